// `train --dry-run`: everything a run would resolve (model, input, recipe, data, splits,
// classes), the model built and a few real training steps timed on this adapter, then the
// estimates for an epoch and the whole run. No run folder is written: a three-day run is
// checked in a minute.
import { splitNames } from "../data/protocols.ts";
import type { RunExperiment } from "./experiment.ts";
import { checkFlags } from "./preflight.ts";
import type { Origins } from "./resolve.ts";
import { learningRate } from "./schedule.ts";
import { rowsThatFit } from "./evaluate.ts";
import { buildSetup, inputSpecOf, openData, type RunData } from "./setup.ts";
import { StepRunner } from "./trainer.ts";
import { fmtBytes } from "../runtime/buffer_pool.ts";
import { flopsPerSample, parameterCount, presetByName } from "../models/presets.ts";
import type { Runtime } from "../runtime/runtime.ts";

export interface DryRunReport {
  dryRun: true;
  model: string;
  recipe: string;
  /** The resolved configuration and where each field came from. */
  config: RunExperiment;
  origins: Origins;
  parameters: number;
  /** Table 2's count, for the study's presets. */
  studyParameters: number | null;
  gflopsPerSample: number;
  input: { kind: string; shape: number[] };
  data: { path: string; split: [string, string]; train: number; val: number; classes: number };
  batchSize: number;
  stepsPerEpoch: number;
  /** Measured here: one optimiser step (data pipeline included), after a warm-up step. */
  msPerStep: number;
  samplesPerSec: number;
  /** Device memory the run's buffers took at their peak (model, optimiser, one step). */
  peakGpuBytes: number;
  estimate: { epochSeconds: number; evalSeconds: number; runSeconds: number };
  adapter: string;
  warnings: string[];
}

/** Enough indices to fill one micro-batch: a split smaller than a batch is repeated. */
function padded(data: RunData, micro: number): RunData {
  const idx = data.trainIdx;
  if (idx.length === 0 || idx.length >= micro) return data;
  return { ...data, trainIdx: Array.from({ length: micro }, (_, i) => idx[i % idx.length]) };
}

export async function dryRun(
  rt: Runtime,
  run: RunExperiment,
  origins: Origins,
  timedSteps = 2,
): Promise<DryRunReport> {
  checkFlags(run);
  let cfg = run;
  const data = await openData(cfg);
  const warnings: string[] = [];
  try {
    const train = data.trainIdx.length;
    let micro = cfg.optim.batchSize / cfg.optim.accumulate;
    if (train === 0) throw new Error(`--split ${cfg.data.split}: no training samples`);
    const stepsPerEpoch = Math.floor(Math.floor(train / micro) / cfg.optim.accumulate);
    if (stepsPerEpoch === 0) {
      warnings.push(
        `${train} training samples are fewer than a batch of ${cfg.optim.batchSize}: the run would ` +
          `stop; timed on a batch of repeated samples`,
      );
    }
    const fit = fittingAccumulation(cfg, rowsThatFit(rt, inputSpecOf(cfg), data.file));
    if (fit !== cfg.optim.accumulate) {
      warnings.push(
        `a pass of ${micro} samples does not fit this adapter's storage binding limit ` +
          `(${fmtBytes(rt.device.limits.maxStorageBufferBindingSize)}): timed with ` +
          `--accumulate ${fit}; add it to the run`,
      );
      cfg = { ...cfg, optim: { ...cfg.optim, accumulate: fit } };
      micro = cfg.optim.batchSize / fit;
    }
    rt.pool.peakBytes = rt.pool.liveBytes + rt.pool.pooledBytes;
    const s = buildSetup(rt, cfg, padded(data, cfg.optim.batchSize));
    const steps = new StepRunner(rt, cfg, s);
    try {
      const ms = await timeSteps(rt, s, steps, cfg, timedSteps);
      const mc = s.mc, preset = presetByName(cfg.model.preset);
      const val = data.valIdx.length;
      const epochSeconds = (stepsPerEpoch * cfg.optim.accumulate * ms) / 1000;
      // a forward pass costs about a third of a training step; validation every evalEvery
      // epochs with one view, the final evaluation with the test protocol's views
      const fwdSeconds = (ms / micro / 3) / 1000;
      const evalSeconds = val * fwdSeconds;
      const finalViews = cfg.eval.clips * (cfg.eval.flip ? 2 : 1);
      const runSeconds = cfg.run.epochs * epochSeconds +
        Math.ceil(cfg.run.epochs / cfg.eval.every) * evalSeconds + val * finalViews * fwdSeconds;
      return {
        dryRun: true,
        model: cfg.model.preset,
        recipe: cfg.run.recipe,
        config: cfg,
        origins,
        parameters: parameterCount(mc),
        studyParameters: preset.studyParams ? preset.studyParams * 1e6 : null,
        gflopsPerSample: flopsPerSample(mc) / 1e9,
        input: {
          kind: cfg.input.kind,
          shape: s.model.config.input.kind === "heatmap"
            ? [mc.input.channels, mc.input.frames, mc.input.size, mc.input.size]
            : [mc.input.persons, mc.input.frames, mc.input.channels, 3],
        },
        data: {
          path: data.path,
          split: splitNames(cfg.data.split),
          train,
          val,
          classes: data.file.meta.classes.length,
        },
        batchSize: cfg.optim.batchSize,
        stepsPerEpoch,
        msPerStep: ms * cfg.optim.accumulate,
        samplesPerSec: (micro * 1000) / ms,
        peakGpuBytes: rt.pool.peakBytes,
        estimate: { epochSeconds, evalSeconds, runSeconds },
        adapter: rt.gpu.description.name,
        warnings,
      };
    } finally {
      steps.dispose();
    }
  } finally {
    await data.file.close();
  }
}

/** The smallest accumulation (a divisor of the batch) whose passes fit `rows` input rows. */
function fittingAccumulation(cfg: RunExperiment, rows: number): number {
  for (let k = cfg.optim.accumulate; k <= cfg.optim.batchSize; k++) {
    if (cfg.optim.batchSize % k === 0 && cfg.optim.batchSize / k <= rows) return k;
  }
  return cfg.optim.batchSize;
}

/** Milliseconds per micro-batch step: one warm-up step (compiles, captures), then `n` timed. */
async function timeSteps(
  rt: Runtime,
  s: ReturnType<typeof buildSetup>,
  steps: StepRunner,
  cfg: RunExperiment,
  n: number,
): Promise<number> {
  let done = 0, t0 = 0;
  for (let epoch = 0; done <= n; epoch++) {
    for await (const hb of s.loader.epoch(epoch)) {
      if (done % cfg.optim.accumulate === 0) {
        s.opt.beginStep(learningRate(s.schedule, Math.floor(done / cfg.optim.accumulate)));
      }
      steps.run(hb, epoch, done);
      if (done === 0) {
        await rt.sync();
        t0 = performance.now();
      }
      if (++done > n) break;
    }
  }
  await rt.sync();
  return (performance.now() - t0) / n;
}
