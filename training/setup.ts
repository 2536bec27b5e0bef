// What a run is made of before its first step: the data (the built-in dataset generated once
// into a cache beside the runs), the model as the experiment describes it, the input pipeline,
// the optimiser, the loader and the schedule.
import { dirname, join, resolve } from "node:path";
import { inputChannels, type InputSpec } from "../data/batches.ts";
import { SYNTH_DEFAULT, synthMeta, synthRecords } from "../data/importers/synth.ts";
import { type JointLayout, layoutByName } from "../data/layouts.ts";
import { BatchLoader } from "../data/loader.ts";
import { splitFraction, splitNames } from "../data/protocols.ts";
import { SkeletonFile, writeSkeletonArrow } from "../data/schema.ts";
import type { ModelConfig } from "../models/config.ts";
import { type ActionModel, buildModel } from "../models/presets.ts";
import type { Runtime } from "../runtime/runtime.ts";
import {
  effectiveLr,
  type Experiment,
  lrScaleOf,
  modelFields,
  type RunExperiment,
} from "./experiment.ts";
import { Optimizer } from "./optimizer.ts";
import { checkData, ConfigError } from "./preflight.ts";
import type { Schedule } from "./schedule.ts";

/** The built-in dataset, generated once per seed into a cache beside the runs. */
export async function builtinDataset(outDir: string): Promise<string> {
  const cache = join(dirname(resolve(outDir)), ".cache");
  await Deno.mkdir(cache, { recursive: true });
  const path = join(cache, `synth-${SYNTH_DEFAULT.seed}.arrow`);
  try {
    await Deno.stat(path);
  } catch {
    // runs started together (a sweep's) may each generate it: each writes its own file and
    // renames it into place (the same bytes), so no reader sees a half-written one
    const own = `${path}.${Deno.pid}.arrow`;
    await writeSkeletonArrow(own, synthMeta(), synthRecords(SYNTH_DEFAULT));
    await Deno.rename(own, path);
  }
  return path;
}

/** The model as built: the experiment's model section, its input and the data's classes. */
export function modelConfigFor(cfg: Experiment, file: SkeletonFile): ModelConfig {
  const layout = layoutByName(file.meta.layout);
  const spec = inputSpecOf(cfg);
  return {
    ...modelFields(cfg),
    // a pretraining model has no classifier: its head predicts each joint's 3D position
    classes: cfg.run.objective === "motion3d" ? 0 : file.meta.classes.length,
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
    objective: cfg.run.objective,
  };
}

export interface RunData {
  file: SkeletonFile;
  /** Absolute path of the file read (for the built-in dataset, its cache). */
  path: string;
  trainIdx: number[];
  valIdx: number[];
}

/** The samples of a split, or of several joined by "+" ("train+val": all of NW-UCLA). */
export function splitUnion(file: SkeletonFile, name: string): number[] {
  if (!name.includes("+")) return file.split(name); // its own order, as runs always had
  const all = new Set(name.split("+").flatMap((n) => file.split(n)));
  return [...all].sort((a, b) => a - b);
}

export async function openData(cfg: RunExperiment): Promise<RunData> {
  const path = cfg.data.path ? resolve(cfg.data.path) : await builtinDataset(cfg.run.out);
  const file = await SkeletonFile.open(path, {
    layout: cfg.data.layout ?? undefined,
    scores: cfg.data.layoutScores,
  });
  try {
    checkData(cfg, file);
    const [trainSplit, valSplit] = splitNames(cfg.data.split);
    const trainIdx = splitFraction(
      splitUnion(file, trainSplit),
      file.index.labels,
      cfg.data.trainFraction,
    );
    return { file, path, trainIdx, valIdx: splitUnion(file, valSplit) };
  } catch (e) {
    await file.close();
    throw e;
  }
}

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
    lrScale: lrScaleOf(cfg),
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
