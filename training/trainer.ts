// The training loop, in nanoGPT's order: learning rate from a pure function; per step, the
// batch rendered straight into the model's input, forward, backward (micro-batches
// accumulate), clip and update, all recorded into one command buffer; loss and accuracy
// accumulate on the GPU and are read once per epoch; evaluate, log, checkpoint (atomic).
// An interrupted run resumes exactly: the data order, the augmentation and the dropout
// seeds are functions of (seed, epoch, batch).
//
// Stages (each guarantee lives in one of them):
//   prepareFolder  the run folder: a finished or foreign run is never overwritten silently
//   openData       the dataset, by absolute path (the built-in one regenerated when missing)
//   buildSetup     model, optimiser, loader, schedule
//   startRun       a new run's config, metrics and a first checkpoint before the first step
//   resumeRun      a checkpoint verified (falling back to last-1), metrics cut to it
//   StepRunner     one optimiser step: inputs into fixed tensors, then the captured step
//   runEpochs      the epoch loop: one metrics line per epoch, then last (and best)
//   finish         the final evaluation (skipped when interrupted) and summary.json
import { dirname, join, resolve } from "node:path";
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import { inputChannels, type InputSpec, rendererFor, TEST_MODE } from "../data/batches.ts";
import { SYNTH_DEFAULT, synthMeta, synthRecords } from "../data/importers/synth.ts";
import { layoutJson } from "../data/layout_file.ts";
import { type JointLayout, layoutByName } from "../data/layouts.ts";
import { BatchLoader } from "../data/loader.ts";
import type { HostBatch } from "../data/batches.ts";
import { SkeletonFile, writeSkeletonArrow } from "../data/schema.ts";
import { CheckpointError, loadCheckpoint, saveCheckpoint } from "../io/checkpoint.ts";
import type { HeatmapRenderer } from "../kernels/heatmap.ts";
import { map } from "../kernels/map.ts";
import { accumulateAt, accumulateCorrect } from "../kernels/metrics.ts";
import type { ModelConfig } from "../models/config.ts";
import { type ActionModel, buildModel, parameterCount } from "../models/presets.ts";
import { StepGraphs } from "../runtime/graph.ts";
import { tunePending } from "../runtime/autotune.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { splitNames } from "../data/protocols.ts";
import { effectiveLr, type Experiment, modelFields, type RunExperiment } from "./experiment.ts";
import { readRunConfig, runConfigText } from "./experiment_file.ts";
import { type EvalResult, evaluate } from "./evaluate.ts";
import { Optimizer } from "./optimizer.ts";
import { failpoint } from "../runtime/failpoints.ts";
import { checkData, checkFlags, ConfigError } from "./preflight.ts";
import { learningRate, type Schedule } from "./schedule.ts";
import type { Origins } from "./resolve.ts";
import { appendEvents, epochRecords, finalRecords, hparamsOf, writeEvents } from "./tensorboard.ts";

export interface EpochMetrics {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valAccuracy: number;
  lr: number;
  samplesPerSec: number;
  seconds: number;
  /** Optimiser steps skipped so far for non-finite gradients, and the loss scale (f16). */
  skippedSteps: number;
  lossScale: number;
  /** Mean training loss per logging interval of `lossInterval` optimiser steps. */
  lossCurve: number[];
  lossInterval: number;
  /** Unix time (seconds) at the end of the epoch. */
  time: number;
}

export interface TrainSummary {
  run: string;
  model: string;
  parameters: number;
  /** Epochs completed by the run, across resumes. */
  epochs: number;
  bestEpoch: number;
  bestValAccuracy: number;
  /** The final evaluation; null when the run was interrupted (it is skipped). */
  final: (EvalResult & { clips: number; flip: boolean; checkpoint: "last" | "best" }) | null;
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

/** An epoch's running sums: loss and hits so far, samples seen, loss per logging interval. */
export interface Carry {
  loss: number;
  correct: number;
  seen: number;
  /** Summed loss x samples per logging interval of the epoch (absent: zeros). */
  curve?: number[];
}

/** Where a run is: its epoch, the batch within it, the best so far and the epoch's running sums. */
export interface Position {
  epoch: number;
  batch: number;
  best: { epoch: number; acc: number };
  carry: Carry;
}

/** Optimiser steps per point of the training-loss curve: about 20 points per epoch. */
export function lossInterval(stepsPerEpoch: number): number {
  return Math.max(1, Math.ceil(stepsPerEpoch / 20));
}

const LAST = "last.safetensors", PREVIOUS = "last-1.safetensors", BEST = "best.safetensors";

/** The built-in dataset, generated once per seed into a cache beside the runs. */
export async function builtinDataset(outDir: string): Promise<string> {
  const cache = join(dirname(resolve(outDir)), ".cache");
  await Deno.mkdir(cache, { recursive: true });
  const path = join(cache, `synth-${SYNTH_DEFAULT.seed}.arrow`);
  try {
    await Deno.stat(path);
  } catch {
    await writeSkeletonArrow(path, synthMeta(), synthRecords(SYNTH_DEFAULT));
  }
  return path;
}

/** The model as built: the experiment's model section, its input and the data's classes. */
export function modelConfigFor(cfg: Experiment, file: SkeletonFile): ModelConfig {
  const layout = layoutByName(file.meta.layout);
  const spec = inputSpecOf(cfg);
  return {
    ...modelFields(cfg),
    classes: file.meta.classes.length,
    input: {
      kind: cfg.input.kind,
      channels: cfg.input.kind === "heatmap" ? inputChannels(layout, spec) : layout.joints.length,
      frames: cfg.input.clipLen,
      size: cfg.input.size,
      persons: cfg.input.persons,
    },
  };
}

export function inputSpecOf(cfg: Experiment): InputSpec {
  return {
    kind: cfg.input.kind,
    clipLen: cfg.input.clipLen,
    size: cfg.input.size,
    sigma: cfg.input.sigma,
    joints: cfg.input.heatmap !== "limb",
    limbs: cfg.input.heatmap !== "joint",
    persons: cfg.input.persons,
    sampling: cfg.input.sampling,
    splitPersons: cfg.input.kind === "heatmap" && cfg.input.heatmapPersons !== "merge",
    viewAlign: cfg.input.viewAlign,
    bones: cfg.input.bones,
    motion: cfg.input.motion,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes a file through a temporary one and a rename: never half-written. */
async function writeAtomic(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

// ---- the run folder and the data ---------------------------------------------------------

/** Makes the run folder; returns whether this call created it (so a failed start removes it). */
async function prepareFolder(out: string, resume: boolean, force: boolean): Promise<boolean> {
  if (resume) {
    if (!(await exists(join(out, "config.json")))) {
      throw new ConfigError(`--resume ${out}: no run there (config.json is missing)`);
    }
    return false;
  }
  if (await exists(join(out, "config.json"))) {
    if (!force) {
      throw new ConfigError(
        `--out ${out}: a run is already there; --resume it, choose another --out, or add ` +
          "--force to replace it",
      );
    }
    await Deno.remove(out, { recursive: true });
  }
  const created = !(await exists(out));
  await Deno.mkdir(out, { recursive: true });
  return created;
}

export interface RunData {
  file: SkeletonFile;
  /** Absolute path of the file read (for the built-in dataset, its cache). */
  path: string;
  trainIdx: number[];
  valIdx: number[];
}

export async function openData(cfg: RunExperiment): Promise<RunData> {
  const path = cfg.data.path ? resolve(cfg.data.path) : await builtinDataset(cfg.run.out);
  const file = await SkeletonFile.open(path);
  try {
    checkData(cfg, file);
    const [trainSplit, valSplit] = splitNames(cfg.data.split);
    return { file, path, trainIdx: file.split(trainSplit), valIdx: file.split(valSplit) };
  } catch (e) {
    await file.close();
    throw e;
  }
}

// ---- model, optimiser, loader, schedule --------------------------------------------------

export interface Setup {
  mc: ModelConfig;
  spec: InputSpec;
  layout: JointLayout;
  model: ActionModel;
  opt: Optimizer;
  /** Samples per micro-batch (a step accumulates cfg.optim.accumulate of them). */
  micro: number;
  loader: BatchLoader;
  stepsPerEpoch: number;
  schedule: Schedule;
}

export function buildSetup(rt: Runtime, cfg: RunExperiment, data: RunData): Setup {
  const { file, trainIdx } = data;
  const mc = modelConfigFor(cfg, file);
  const spec = inputSpecOf(cfg);
  const layout = layoutByName(file.meta.layout);
  if (cfg.run.f16 && !rt.gpu.f16) {
    throw new ConfigError(`--f16: the adapter ${rt.gpu.description.name} has no shader-f16`);
  }
  const micro = cfg.optim.batchSize / cfg.optim.accumulate;
  if (!Number.isInteger(micro)) {
    throw new ConfigError(
      `--accumulate: ${cfg.optim.accumulate} does not divide --batch-size ${cfg.optim.batchSize}`,
    );
  }
  rt.computeDtype = cfg.run.f16 ? "f16" : "f32";
  const model = buildModel(rt, mc, cfg.run.seed);
  const opt = new Optimizer(rt, model.namedParams(), {
    kind: cfg.optim.optimizer,
    weightDecay: cfg.optim.weightDecay,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    momentum: cfg.optim.momentum,
    nesterov: cfg.optim.nesterov,
    clipNorm: cfg.optim.clipNorm,
  });
  const mode = {
    train: true,
    clips: 1,
    flipTest: false,
    flipProb: cfg.augment.flip,
    augment: { rotation: cfg.augment.rotation, noise: cfg.augment.noise, shift: cfg.augment.shift },
  };
  const loader = new BatchLoader(file, trainIdx, spec, mode, {
    batchSize: micro,
    shuffle: true,
    seed: cfg.run.seed,
    window: 8,
    prefetch: 2,
    dropLast: true,
  });
  const stepsPerEpoch = Math.floor(loader.batchesPerEpoch / cfg.optim.accumulate);
  if (stepsPerEpoch === 0) {
    throw new ConfigError(
      `--batch-size ${cfg.optim.batchSize} exceeds the ${trainIdx.length} training samples`,
    );
  }
  // The schedule spans cfg.epochs: extending a run (--resume --epochs N) re-plans it from the
  // current step, and its config.json records the new length.
  const schedule: Schedule = {
    kind: cfg.schedule.kind,
    lr: effectiveLr(cfg),
    warmupSteps: Math.round(cfg.schedule.warmupEpochs * stepsPerEpoch),
    totalSteps: cfg.run.epochs * stepsPerEpoch,
    stepsPerEpoch,
    milestones: cfg.schedule.milestones,
    gamma: cfg.schedule.gamma,
    minRatio: 0,
  };
  return { mc, spec, layout, model, opt, micro, loader, stepsPerEpoch, schedule };
}

// ---- checkpoints and the record of a run ---------------------------------------------------

/** What a checkpoint records beside the tensors: the model, its input, the data, the position. */
function checkpointMeta(cfg: RunExperiment, s: Setup, data: RunData, pos: Position) {
  return {
    preset: cfg.model.preset,
    config: JSON.stringify(s.mc),
    // The input pipeline and the data too, so that a checkpoint alone evaluates like its run.
    input: JSON.stringify(s.spec),
    data: JSON.stringify({ path: data.path, split: cfg.data.split }),
    // the layout and class names, so that predict works on new data without the training file
    layout: JSON.stringify(layoutJson(s.layout)),
    classes: JSON.stringify(data.file.meta.classes),
    position: JSON.stringify(pos),
  };
}

async function saveLast(
  rt: Runtime,
  cfg: RunExperiment,
  s: Setup,
  data: RunData,
  pos: Position,
): Promise<void> {
  await saveCheckpoint(
    rt,
    join(cfg.run.out, LAST),
    s.model,
    s.opt,
    checkpointMeta(cfg, s, data, pos),
    join(cfg.run.out, PREVIOUS),
  );
}

/** A new run: its resolved configuration, an empty metrics file, and a first checkpoint. */
async function startRun(
  rt: Runtime,
  cfg: RunExperiment,
  s: Setup,
  data: RunData,
  origins: Origins = {},
): Promise<Position> {
  const experiment = {
    ...cfg,
    data: { ...cfg.data, path: cfg.data.path ? data.path : null },
    run: { ...cfg.run, out: resolve(cfg.run.out) },
  };
  await writeAtomic(
    join(cfg.run.out, "config.json"),
    runConfigText(experiment, origins, { dataFile: data.path, modelConfig: s.mc }),
  );
  await writeAtomic(join(cfg.run.out, "metrics.jsonl"), "");
  await writeEvents(cfg.run.out, hparamsOf(cfg, s.mc), [], s.stepsPerEpoch);
  const pos: Position = {
    epoch: 0,
    batch: 0,
    best: { epoch: -1, acc: -1 },
    carry: { loss: 0, correct: 0, seen: 0 },
  };
  await saveLast(rt, cfg, s, data, pos); // any run that started can be resumed
  return pos;
}

/**
 * Loads the last checkpoint (or, when it is damaged or missing, the one before it), cuts the
 * metrics to the epochs it has seen (a kill between a metrics line and its checkpoint leaves
 * one line too many), and records the configuration (a larger --epochs).
 */
async function resumeRun(
  rt: Runtime,
  cfg: RunExperiment,
  s: Setup,
  log: (line: string) => void,
): Promise<Position> {
  let meta: Record<string, string> | null = null;
  const failures: string[] = [];
  for (const name of [LAST, PREVIOUS]) {
    try {
      meta = await loadCheckpoint(rt, join(cfg.run.out, name), s.model, s.opt);
      if (failures.length) log(`${failures.join("; ")}; resuming from ${join(cfg.run.out, name)}`);
      break;
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      failures.push(e.message);
    }
  }
  if (!meta) {
    throw new CheckpointError(
      `--resume ${cfg.run.out}: no usable checkpoint (${failures.join("; ")}); start the run again`,
    );
  }
  const pos = JSON.parse(meta.position ?? "{}") as Partial<Position>;
  const at: Position = {
    epoch: pos.epoch ?? 0,
    batch: pos.batch ?? 0,
    best: pos.best ?? { epoch: -1, acc: -1 },
    carry: pos.carry ?? { loss: 0, correct: 0, seen: 0 },
  };
  const metricsPath = join(cfg.run.out, "metrics.jsonl");
  const lines = (await Deno.readTextFile(metricsPath).catch(() => "")).split("\n")
    .filter((l) => l.trim() && JSON.parse(l).epoch <= at.epoch);
  await writeAtomic(metricsPath, lines.map((l) => l + "\n").join(""));
  // the event file follows the metrics it was written from: no epoch twice
  const kept = lines.map((l) => JSON.parse(l) as EpochMetrics);
  await writeEvents(cfg.run.out, hparamsOf(cfg, s.mc), kept, s.stepsPerEpoch);
  const saved = await readRunConfig(cfg.run.out);
  if (saved.experiment.run.epochs !== cfg.run.epochs || saved.format === 1) {
    // an extension is recorded; a flat (format 1) config.json is rewritten in format 2
    const from = saved.experiment.run.epochs;
    const extended = [...(saved.record.extended ?? [])];
    if (from !== cfg.run.epochs) extended.push({ from, to: cfg.run.epochs, at: at.epoch });
    const experiment = {
      ...saved.experiment,
      run: { ...saved.experiment.run, epochs: cfg.run.epochs },
    };
    await writeAtomic(
      join(cfg.run.out, "config.json"),
      runConfigText(experiment, saved.origins, { ...saved.record, extended }),
    );
  }
  log(`resuming ${cfg.run.out} at epoch ${at.epoch + 1}, batch ${at.batch}`);
  return at;
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
  readonly #fixed = new Map<number, { labels: Tensor; kp: Tensor | null }>();
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
    const fixed = this.#fixed.get(hb.samples) ?? this.#fixed.set(hb.samples, {
      labels: rt.persistent([hb.samples], "i32", "labels"),
      kp: this.renderer ? null : rt.persistent(
        [hb.samples, spec.persons, spec.clipLen, layout.joints.length, 3],
        "f32",
        "keypoints",
      ),
    }).get(hb.samples)!;
    rt.write(fixed.labels, hb.labels);
    const shape = [hb.samples, spec.persons, spec.clipLen, layout.joints.length] as const;
    const input = this.renderer ? this.renderer.render(hb.xy!, hb.score!, shape) : fixed.kp!;
    if (!this.renderer) rt.write(input, hb.kp!);
    const update = (batch + 1) % cfg.optim.accumulate === 0;
    const body = () => {
      rt.tidy(() => {
        const logits = ops.cast(s.model.forward(input), "f32");
        const loss = ops.crossEntropy(logits, fixed.labels, cfg.optim.labelSmoothing);
        backward(
          cfg.optim.accumulate > 1 ? ops.scale(loss, 1 / cfg.optim.accumulate) : loss,
          s.opt.lossSeed(),
        );
        map(rt, [loss], "yo + v0 * " + hb.samples.toFixed(1), { out: this.lossSum });
        accumulateAt(rt, loss, this.slot, this.curve, hb.samples);
        accumulateCorrect(rt, logits, fixed.labels, this.correctSum);
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
    for (const f of this.#fixed.values()) [f.labels, f.kp].forEach((t) => t && this.rt.dispose(t));
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
      log(
        `epoch ${m.epoch}/${cfg.run.epochs}: loss ${m.trainLoss.toFixed(3)}, train ${
          (m.trainAccuracy * 100).toFixed(1)
        }%, val ${Number.isNaN(m.valAccuracy) ? "-" : `${(m.valAccuracy * 100).toFixed(1)}%`}, lr ${
          m.lr.toExponential(2)
        }, ${m.samplesPerSec.toFixed(0)} samples/s`,
      );
      if (hooks.shouldStop?.() && pos.epoch < cfg.run.epochs) {
        return { pos, interrupted: true, processed: counters.processed };
      }
    }
    return { pos, interrupted: false, processed: counters.processed };
  } finally {
    steps.dispose();
  }
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
  const val = validate
    ? await evaluate(rt, s.model, data.file, data.valIdx, s.spec, TEST_MODE, s.micro)
    : null;
  const m: EpochMetrics = {
    epoch: pos.epoch + 1,
    trainLoss,
    trainAccuracy: trainAcc,
    valAccuracy: val?.top1 ?? NaN,
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
  let final: TrainSummary["final"] = null;
  if (!loop.interrupted) {
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
export async function train(
  rt: Runtime,
  cfg: RunExperiment,
  resume: boolean,
  hooks: TrainHooks = {},
): Promise<TrainSummary> {
  const log = hooks.log ?? (() => {});
  checkFlags(cfg);
  const created = await prepareFolder(cfg.run.out, resume, !!hooks.force);
  let stepped = false;
  let data: RunData | null = null;
  try {
    data = await openData(cfg);
    const s = buildSetup(rt, cfg, data);
    const start = resume
      ? await resumeRun(rt, cfg, s, log)
      : await startRun(rt, cfg, s, data, hooks.origins);
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
    await data?.file.close();
  }
}
