// The training loop, in nanoGPT's order: learning rate from a pure function; per step, the
// batch rendered straight into the model's input, forward, backward (micro-batches
// accumulate), clip and update, all recorded into one command buffer; loss and accuracy
// accumulate on the GPU and are read once per epoch; evaluate, log, checkpoint (atomic).
// An interrupted run resumes exactly: the data order, the augmentation and the dropout
// seeds are functions of (seed, epoch, batch).
//
// Stages (each guarantee lives in one of them):
//   prepareFolder  the run folder: a finished or foreign run is never overwritten silently
//                  (run_folder.ts, as are startRun, resumeRun and the checkpoints)
//   openData       the dataset, by absolute path (setup.ts: the built-in one regenerated)
//   buildSetup     model, optimiser, loader, schedule (setup.ts)
//   startRun       a new run's config, metrics and a first checkpoint before the first step
//   resumeRun      a checkpoint verified (falling back to last-1), metrics cut to it
//   StepRunner     one optimiser step: inputs into fixed tensors, then the captured step
//   runEpochs      the epoch loop: one metrics line per epoch, then last (and best)
//   finish         the final evaluation (skipped when interrupted) and summary.json
import { join } from "node:path";
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import { type HostBatch, rendererFor, TEST_MODE } from "../data/batches.ts";
import { loadCheckpoint, saveCheckpoint } from "../io/checkpoint.ts";
import type { HeatmapRenderer } from "../kernels/heatmap.ts";
import { map } from "../kernels/map.ts";
import { accumulateAt, accumulateCorrect } from "../kernels/metrics.ts";
import { parameterCount } from "../models/presets.ts";
import { tunePending } from "../runtime/autotune.ts";
import { failpoint } from "../runtime/failpoints.ts";
import { StepGraphs } from "../runtime/graph.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { type EvalResult, evaluate } from "./evaluate.ts";
import type { RunExperiment } from "./experiment.ts";
import { checkFlags } from "./preflight.ts";
import { initFrom, initLine, type InitReport } from "./init.ts";
import { motionLoss } from "./motion_loss.ts";
import { PRETRAINED, pretrainedEncoder } from "./pretrained.ts";
import { evaluateMotion, type MotionResult } from "./evaluate_motion.ts";
import type { Origins } from "./resolve.ts";
import {
  BEST,
  checkpointMeta,
  ENCODER,
  type EpochMetrics,
  LAST,
  type Position,
  prepareFolder,
  resumeRun,
  saveLast,
  startRun,
  writeAtomic,
} from "./run_folder.ts";
import { learningRate } from "./schedule.ts";
import { buildSetup, openData, type RunData, type Setup } from "./setup.ts";
import { appendEvents, epochRecords, finalRecords } from "./tensorboard.ts";

export type { EpochMetrics };

export interface TrainSummary {
  run: string;
  model: string;
  parameters: number;
  /** Epochs completed by the run, across resumes. */
  epochs: number;
  bestEpoch: number;
  bestValAccuracy: number;
  /** The final evaluation; null when the run was interrupted (it is skipped) or pretrained. */
  final: (EvalResult & { clips: number; flip: boolean; checkpoint: "last" | "best" }) | null;
  /** A pretraining run's final evaluation (run.objective motion3d). */
  motion?: MotionResult;
  /** Samples per second and seconds of this process (a resumed run counts its own part). */
  samplesPerSec: number;
  seconds: number;
  interrupted: boolean;
}

export class TrainingStopped extends Error {}

export interface TrainHooks {
  log?: (line: string) => void;
  progress?: (epoch: number, done: number, total: number, samplesPerSec: number) => void;
  /** Checked after every step; true stops the run (Ctrl-C), saving `last`. */
  shouldStop?: () => boolean;
  /** A new run may replace a run already in its folder. */
  force?: boolean;
  /** Where each configuration field came from, recorded in a new run's config.json. */
  origins?: Origins;
}

/** Optimiser steps per point of the training-loss curve: about 20 points per epoch. */
export function lossInterval(stepsPerEpoch: number): number {
  return Math.max(1, Math.ceil(stepsPerEpoch / 20));
}

// ---- one optimiser step --------------------------------------------------------------------

/** Runs the steps of a run: per-step inputs into fixed tensors, then the captured step. */
export class StepRunner {
  readonly renderer: HeatmapRenderer | null;
  readonly seed: Tensor;
  readonly lossSum: Tensor;
  readonly correctSum: Tensor;
  /** Loss x samples summed per logging interval of the epoch, and the current interval. */
  readonly curve: Tensor;
  readonly slot: Tensor;
  /** Micro-batches per logging interval. */
  readonly interval: number;
  readonly #fixed = new Map<
    number,
    { labels: Tensor; kp: Tensor | null; target: Tensor | null }
  >();
  readonly #graphs: StepGraphs;

  constructor(readonly rt: Runtime, readonly cfg: RunExperiment, readonly s: Setup) {
    this.renderer = rendererFor(rt, s.spec, s.layout);
    this.seed = rt.tensor([0], [1], "i32", { persistent: true, name: "dropoutSeed" });
    (s.model as { ctx: { seed: Tensor | null } }).ctx.seed = this.seed;
    this.lossSum = rt.persistent([1], "f32", "lossSum");
    this.correctSum = rt.persistent([1], "f32", "correctSum");
    this.interval = lossInterval(s.stepsPerEpoch) * cfg.optim.accumulate;
    // one slot per interval of the epoch's optimiser steps; a trailing partial accumulation's
    // batches fall past the last slot and are not recorded
    this.curve = rt.persistent(
      [Math.ceil(microSteps(s, cfg) / this.interval)],
      "f32",
      "curve",
    );
    this.slot = rt.tensor([0], [1], "i32", { persistent: true, name: "curveSlot" });
    this.#graphs = new StepGraphs(rt);
  }

  /** One micro-batch: forward, backward, and (at the end of an accumulation) the update. */
  run(hb: HostBatch, epoch: number, batch: number): void {
    const { rt, cfg, s } = this;
    const { spec, layout } = s;
    rt.write(this.seed, [(cfg.run.seed * 1000003 + epoch * 100003 + batch) | 0]);
    rt.write(this.slot, [Math.floor(batch / this.interval)]);
    const V = layout.joints.length;
    const fixed = this.#fixed.get(hb.samples) ?? this.#fixed.set(hb.samples, {
      labels: rt.persistent([hb.samples], "i32", "labels"),
      kp: this.renderer
        ? null
        : rt.persistent([hb.samples, spec.persons, spec.clipLen, V, 3], "f32", "keypoints"),
      target: hb.target ? rt.persistent([hb.samples, spec.clipLen, V, 3], "f32", "target") : null,
    }).get(hb.samples)!;
    rt.write(fixed.labels, hb.labels);
    if (fixed.target) rt.write(fixed.target, hb.target!);
    const shape = [hb.samples, spec.persons, spec.clipLen, layout.joints.length] as const;
    const input = this.renderer ? this.renderer.render(hb.xy!, hb.score!, shape) : fixed.kp!;
    if (!this.renderer) rt.write(input, hb.kp!);
    const update = (batch + 1) % cfg.optim.accumulate === 0;
    const body = () => {
      rt.tidy(() => {
        const out = ops.cast(s.model.forward(input), "f32");
        // the objective: action classes, or (pretraining) the 3D motion of every joint
        const loss = fixed.target
          ? motionLoss(out, fixed.target)
          : ops.crossEntropy(out, fixed.labels, cfg.optim.labelSmoothing);
        backward(
          cfg.optim.accumulate > 1 ? ops.scale(loss, 1 / cfg.optim.accumulate) : loss,
          s.opt.lossSeed(),
        );
        map(rt, [loss], "yo + v0 * " + hb.samples.toFixed(1), { out: this.lossSum });
        accumulateAt(rt, loss, this.slot, this.curve, hb.samples);
        if (!fixed.target) accumulateCorrect(rt, out, fixed.labels, this.correctSum);
      });
      if (update) s.opt.step();
    };
    this.#graphs.run(`${hb.samples}:${update}`, input, body);
    rt.flush();
  }

  /** Measures the kernel shapes the autotuner queued (runtime/autotune.ts); the captured
   * steps are then recorded again, with its answers. */
  async tune(log?: (line: string) => void): Promise<void> {
    if (await tunePending(this.rt, log)) this.#graphs.dispose();
  }

  dispose(): void {
    this.renderer?.dispose();
    this.#graphs.dispose();
    for (const t of [this.seed, this.lossSum, this.correctSum, this.curve, this.slot]) {
      this.rt.dispose(t);
    }
    for (const f of this.#fixed.values()) {
      [f.labels, f.kp, f.target].forEach((t) => t && this.rt.dispose(t));
    }
  }
}

// ---- the epoch loop ------------------------------------------------------------------------

interface LoopResult {
  pos: Position;
  interrupted: boolean;
  /** Samples this process trained on (not those an interrupted epoch had seen before). */
  processed: number;
}

/** One epoch's steps from `pos`; returns false when interrupted (after saving `last`). */
async function trainEpoch(
  ctx: { rt: Runtime; cfg: RunExperiment; s: Setup; data: RunData; steps: StepRunner },
  pos: Position,
  hooks: TrainHooks,
  counters: { processed: number; t0: number; lr: number },
): Promise<boolean> {
  const { rt, cfg, s, data, steps } = ctx;
  const epoch = pos.epoch;
  rt.write(steps.lossSum, [pos.carry.loss]);
  rt.write(steps.correctSum, [pos.carry.correct]);
  const curve = new Float32Array(steps.curve.size);
  curve.set((pos.carry.curve ?? []).slice(0, curve.length));
  rt.write(steps.curve, curve);
  let seen = pos.carry.seen, batch = 0;
  for await (const hb of s.loader.epoch(epoch)) {
    if (batch < pos.batch) {
      batch++;
      continue;
    }
    if (batch % cfg.optim.accumulate === 0) {
      counters.lr = learningRate(
        s.schedule,
        epoch * s.stepsPerEpoch + batch / cfg.optim.accumulate,
      );
      s.opt.beginStep(counters.lr);
    }
    steps.run(hb, epoch, batch);
    failpoint("step");
    if (rt.tuner?.pending) await steps.tune(hooks.log);
    seen += hb.samples;
    counters.processed += hb.samples;
    batch++;
    const rate = counters.processed / ((performance.now() - counters.t0) / 1000);
    hooks.progress?.(epoch, batch, s.loader.batchesPerEpoch, rate);
    const lastStep = batch >= s.stepsPerEpoch * cfg.optim.accumulate;
    if (hooks.shouldStop?.() && batch % cfg.optim.accumulate === 0 && !lastStep) {
      const [l, c, k] = await rt.readMany([steps.lossSum, steps.correctSum, steps.curve]);
      pos.batch = batch;
      pos.carry = { loss: l[0], correct: c[0], seen, curve: Array.from(k) };
      await saveLast(rt, cfg, s, data, pos);
      return false;
    }
  }
  if (batch % cfg.optim.accumulate !== 0) s.opt.zeroGrad(); // a trailing partial accumulation
  pos.carry.seen = seen;
  return true;
}

async function runEpochs(
  rt: Runtime,
  cfg: RunExperiment,
  s: Setup,
  data: RunData,
  start: Position,
  hooks: TrainHooks,
): Promise<LoopResult> {
  const log = hooks.log ?? (() => {});
  const steps = new StepRunner(rt, cfg, s);
  const counters = { processed: 0, t0: performance.now(), lr: 0 };
  const pos: Position = structuredClone(start);
  s.model.train(true);
  try {
    while (pos.epoch < cfg.run.epochs) {
      const te = performance.now(), before = counters.processed;
      if (!(await trainEpoch({ rt, cfg, s, data, steps }, pos, hooks, counters))) {
        return { pos, interrupted: true, processed: counters.processed };
      }
      const m = await endEpoch(rt, cfg, s, data, steps, pos, counters.lr, {
        processed: counters.processed - before,
        seconds: (performance.now() - te) / 1000,
      });
      log(epochLine(m, cfg));
      if (hooks.shouldStop?.() && pos.epoch < cfg.run.epochs) {
        return { pos, interrupted: true, processed: counters.processed };
      }
    }
    return { pos, interrupted: false, processed: counters.processed };
  } finally {
    steps.dispose();
  }
}

/** An epoch's log line: loss, accuracy (or the pretraining task's error), lr, speed. */
function epochLine(m: EpochMetrics, cfg: RunExperiment): string {
  const pct = (v: number) => Number.isNaN(v) ? "-" : `${(v * 100).toFixed(1)}%`;
  const scores = cfg.run.objective === "motion3d"
    ? `val MPJPE ${m.valError === undefined ? "-" : m.valError.toFixed(4)}`
    : `train ${pct(m.trainAccuracy)}, val ${pct(m.valAccuracy)}`;
  return `epoch ${m.epoch}/${cfg.run.epochs}: loss ${m.trainLoss.toFixed(3)}, ${scores}, lr ${
    m.lr.toExponential(2)
  }, ${m.samplesPerSec.toFixed(0)} samples/s`;
}

/** Micro-batches of an epoch's optimiser steps. */
function microSteps(s: Setup, cfg: RunExperiment): number {
  return s.stepsPerEpoch * cfg.optim.accumulate;
}

/** Mean loss per interval from the summed loss x samples of each (the last may be partial). */
function intervalMeans(sums: ArrayLike<number>, interval: number, batches: number, micro: number) {
  return Array.from(sums, (v, k) => v / (Math.min(interval, batches - k * interval) * micro));
}

/**
 * The end of an epoch: one host sync, validation, one metrics line, then the checkpoints
 * (best, then last). A kill anywhere in here resumes from the previous `last`, and
 * resumeRun drops the metrics line of the epoch that is then trained again.
 */
async function endEpoch(
  rt: Runtime,
  cfg: RunExperiment,
  s: Setup,
  data: RunData,
  steps: StepRunner,
  pos: Position,
  lr: number,
  speed: { processed: number; seconds: number },
): Promise<EpochMetrics> {
  const [ls, cs, gs, curve] = await rt.readMany([
    steps.lossSum,
    steps.correctSum,
    s.opt.gradScale,
    steps.curve,
  ]);
  const seen = pos.carry.seen;
  const trainLoss = ls[0] / seen, trainAcc = cs[0] / seen;
  if (!Number.isFinite(trainLoss)) {
    throw new TrainingStopped(
      `the training loss became ${trainLoss} in epoch ${pos.epoch + 1}; stopped. The last ` +
        `good checkpoint is ${join(cfg.run.out, LAST)} (lower --lr or set --clip-norm)`,
    );
  }
  const validate = (pos.epoch + 1) % cfg.eval.every === 0 || pos.epoch + 1 === cfg.run.epochs;
  const motion = cfg.run.objective === "motion3d";
  const val = validate && !motion
    ? await evaluate(rt, s.model, data.file, data.valIdx, s.spec, TEST_MODE, s.micro)
    : null;
  const valMotion = validate && motion
    ? await evaluateMotion(rt, s.model, data.file, data.valIdx, s.spec, s.micro)
    : null;
  const m: EpochMetrics = {
    ...(pos.runId ? { runId: pos.runId } : {}),
    epoch: pos.epoch + 1,
    trainLoss,
    trainAccuracy: trainAcc,
    valAccuracy: val?.top1 ?? NaN,
    ...(valMotion ? { valError: valMotion.mpjpe } : {}),
    lr,
    samplesPerSec: speed.processed / speed.seconds,
    seconds: speed.seconds,
    skippedSteps: gs[5],
    lossScale: gs[3],
    lossCurve: intervalMeans(curve, steps.interval, microSteps(s, cfg), s.micro),
    lossInterval: steps.interval / cfg.optim.accumulate,
    time: Date.now() / 1000,
  };
  await Deno.writeTextFile(join(cfg.run.out, "metrics.jsonl"), JSON.stringify(m) + "\n", {
    append: true,
  });
  await appendEvents(cfg.run.out, epochRecords(m, s.stepsPerEpoch));
  failpoint("metrics");
  pos.epoch++;
  pos.batch = 0;
  pos.carry = { loss: 0, correct: 0, seen: 0 };
  if (val && val.top1 > pos.best.acc) {
    pos.best = { epoch: pos.epoch, acc: val.top1 };
    await saveCheckpoint(
      rt,
      join(cfg.run.out, BEST),
      s.model,
      undefined,
      checkpointMeta(cfg, s, data, pos),
    );
  }
  await saveLast(rt, cfg, s, data, pos);
  return m;
}

// ---- the end of a run ----------------------------------------------------------------------

async function finish(
  rt: Runtime,
  cfg: RunExperiment,
  s: Setup,
  data: RunData,
  loop: LoopResult,
  seconds: number,
): Promise<TrainSummary> {
  let final: TrainSummary["final"] = null, motion: MotionResult | undefined;
  if (!loop.interrupted && cfg.run.objective === "motion3d") {
    motion = await evaluateMotion(rt, s.model, data.file, data.valIdx, s.spec, s.micro);
    // the weights alone (no optimiser state): what --init takes to fine-tune
    await saveCheckpoint(
      rt,
      join(cfg.run.out, ENCODER),
      s.model,
      undefined,
      checkpointMeta(cfg, s, data, loop.pos),
    );
  } else if (!loop.interrupted) {
    // The last epoch's weights (or the best validation epoch's), with the test-time views.
    if (cfg.eval.checkpoint === "best" && loop.pos.best.epoch > 0) {
      await loadCheckpoint(rt, join(cfg.run.out, BEST), s.model);
    }
    const mode = { ...TEST_MODE, clips: cfg.eval.clips, flipTest: cfg.eval.flip };
    const r = await evaluate(rt, s.model, data.file, data.valIdx, s.spec, mode, s.micro);
    final = { ...r, clips: cfg.eval.clips, flip: cfg.eval.flip, checkpoint: cfg.eval.checkpoint };
    await appendEvents(cfg.run.out, finalRecords(r, loop.pos.epoch * s.stepsPerEpoch));
  }
  const summary: TrainSummary = {
    run: cfg.run.out,
    model: cfg.model.preset,
    parameters: parameterCount(s.mc),
    epochs: loop.pos.epoch,
    bestEpoch: loop.pos.best.epoch,
    bestValAccuracy: loop.pos.best.acc,
    final,
    ...(motion ? { motion } : {}),
    samplesPerSec: loop.processed / seconds,
    seconds,
    interrupted: loop.interrupted,
  };
  await writeAtomic(join(cfg.run.out, "summary.json"), JSON.stringify(summary, null, 2));
  return summary;
}

/**
 * Trains a run (a new one, or `resume` the one in cfg.run.out). Flags are checked before any
 * model exists; a run that fails before its first step leaves no folder behind.
 */
/** A new run's starting weights (`run.init`), reported; the record for its config.json. */
async function initWeights(
  rt: Runtime,
  cfg: RunExperiment,
  s: Setup,
  log: (line: string) => void,
): Promise<{ init?: InitReport }> {
  if (!cfg.run.init) return {};
  const source = cfg.run.init === PRETRAINED
    ? await pretrainedEncoder(cfg.model.preset)
    : cfg.run.init;
  const report = await initFrom(rt, s.model, source);
  log(initLine(report));
  return { init: report };
}

export async function train(
  rt: Runtime,
  cfg: RunExperiment,
  resume: boolean,
  hooks: TrainHooks = {},
): Promise<TrainSummary> {
  const log = hooks.log ?? (() => {});
  checkFlags(cfg);
  const { created, lock } = await prepareFolder(cfg.run.out, resume, !!hooks.force, log);
  let stepped = false;
  let data: RunData | null = null;
  try {
    data = await openData(cfg);
    if (cfg.run.objective === "motion3d") {
      // a pretraining run that trains on: its encoder file no longer is the run's end
      await Deno.remove(join(cfg.run.out, ENCODER)).catch(() => {});
    }
    const s = buildSetup(rt, cfg, data);
    const start = resume
      ? await resumeRun(rt, cfg, s, log)
      : await startRun(rt, cfg, s, data, hooks.origins, await initWeights(rt, cfg, s, log));
    log(
      `${cfg.model.preset}: ${
        parameterCount(s.mc).toLocaleString("en")
      } parameters, ${data.trainIdx.length} train / ${data.valIdx.length} val samples, ${s.stepsPerEpoch} steps per epoch, on ${rt.gpu.description.name}`,
    );
    const t0 = performance.now();
    stepped = true;
    const loop = await runEpochs(rt, cfg, s, data, start, hooks);
    if (loop.interrupted) {
      log(
        `interrupted: saved ${join(cfg.run.out, LAST)} at epoch ${
          loop.pos.epoch + 1
        }, batch ${loop.pos.batch}; continue with --resume ${cfg.run.out}`,
      );
    }
    return await finish(rt, cfg, s, data, loop, (performance.now() - t0) / 1000);
  } catch (e) {
    if (created && !stepped) await Deno.remove(cfg.run.out, { recursive: true }).catch(() => {});
    throw e;
  } finally {
    lock.release();
    await data?.file.close();
  }
}
