// A run's configuration: one zod schema (validated before any work), flags overriding a
// JSON file, the resolved configuration saved beside the run.
import { z } from "zod";

/** Everything a run varies; flags are the kebab-case field names (--clip-len, ...). */
export interface RunConfig {
  model: string;
  /** Training recipe (training/recipes.ts); default: the preset's. */
  recipe: string;
  width?: number;
  depth?: number;
  heads?: number;
  /** Override the preset's dropout / stochastic-depth rate. */
  dropout?: number;
  dropPath?: number;
  /** Override the preset's dropout before the classifier. */
  headDropout?: number;
  tubelet?: [number, number, number];
  /** Override the preset's heatmap frame embedding (vanilla): flat or joint stem. */
  stem?: "flat" | "joint";
  stemDim?: number;
  spatialInit?: "normal" | "fourier";
  /** Heatmaps of several persons: merge | stack | separate (models/config.ts). */
  heatmapPersons: "merge" | "stack" | "separate";
  input: "heatmap" | "kp2d" | "kp3d";
  heatmap: "joint" | "limb" | "both";
  clipLen: number;
  /**
   * Frame sampling: pyskl's UniformSampleFrames ("uniform") or MotionBERT's resample (index
   * grid over the whole sequence with a random offset per frame in training).
   */
  sampling: "uniform" | "resample";
  /** Persons per sample (the study: 2, the larger motions first; NW-UCLA has 1). */
  persons: number;
  size: number;
  sigma: number;
  /** Arrow dataset; null: the built-in synthetic dataset. */
  data: string | null;
  /** A protocol (ntu60-xsub, ntu60-xview, nw-ucla, synth) or "TRAIN:VAL" split names. */
  split: string;
  /** kp3d: turn each clip into the body's frame (spine up, hips and shoulders across). */
  viewAlign: boolean;
  /** Keypoint inputs: the bone stream (each joint minus its parent). */
  bones: boolean;
  /** Keypoint inputs: the motion stream (each joint's or bone's step to the next frame). */
  motion: boolean;
  rotation: number;
  noise: number;
  shift: number;
  flip: number;
  optimizer: "adamw" | "sgd";
  lr: number;
  weightDecay: number;
  momentum: number;
  nesterov: boolean;
  /** exponential: lr x gamma after every epoch (MotionBERT's ExponentialLR). */
  schedule: "cosine" | "step" | "constant" | "exponential";
  warmupEpochs: number;
  milestones: number[];
  gamma: number;
  labelSmoothing: number;
  clipNorm: number;
  batchSize: number;
  accumulate: number;
  epochs: number;
  seed: number;
  testClips: number;
  /**
   * The weights of the final evaluation: the last epoch's, or the best validation epoch's. In
   * every protocol here the validation split is the test split, so "best" picks the epoch on
   * the test set: "last" is the honest default.
   */
  finalCheckpoint: "last" | "best";
  /** Validate every N epochs (and after the last). */
  evalEvery: number;
  flipTest: boolean;
  /** Mixed precision: f16 activations, f32 master weights, dynamic loss scaling. */
  f16: boolean;
  out: string;
}

const RunConfigSchema: z.ZodType<RunConfig> = z.object({
  model: z.string().min(1),
  recipe: z.string().min(1),
  width: z.number().int().positive().optional(),
  depth: z.number().int().positive().optional(),
  heads: z.number().int().positive().optional(),
  dropout: z.number().min(0).max(0.9).optional(),
  dropPath: z.number().min(0).max(0.9).optional(),
  headDropout: z.number().min(0).max(0.9).optional(),
  tubelet: z.tuple([
    z.number().int().positive(),
    z.number().int().positive(),
    z.number().int().positive(),
  ]).optional(),
  stem: z.enum(["flat", "joint"]).optional(),
  stemDim: z.number().int().positive().optional(),
  spatialInit: z.enum(["normal", "fourier"]).optional(),
  heatmapPersons: z.enum(["merge", "stack", "separate"]),
  input: z.enum(["heatmap", "kp2d", "kp3d"]),
  heatmap: z.enum(["joint", "limb", "both"]),
  clipLen: z.number().int().positive(),
  sampling: z.enum(["uniform", "resample"]),
  persons: z.number().int().min(1).max(4),
  size: z.number().int().min(8),
  sigma: z.number().positive(),
  /** Arrow dataset; null: the built-in synthetic dataset. */
  data: z.string().nullable(),
  /** A protocol (ntu60-xsub, ntu60-xview, nw-ucla, synth) or "TRAIN:VAL" split names. */
  split: z.string().min(1),
  viewAlign: z.boolean(),
  bones: z.boolean(),
  motion: z.boolean(),
  rotation: z.number().min(0).max(180),
  noise: z.number().min(0).max(1),
  shift: z.number().int().min(0),
  flip: z.number().min(0).max(1),
  optimizer: z.enum(["adamw", "sgd"]),
  lr: z.number().positive(),
  weightDecay: z.number().min(0),
  momentum: z.number().min(0).max(1),
  nesterov: z.boolean(),
  schedule: z.enum(["cosine", "step", "constant", "exponential"]),
  warmupEpochs: z.number().min(0),
  milestones: z.array(z.number().min(0).max(1)),
  gamma: z.number().positive(),
  labelSmoothing: z.number().min(0).max(0.99),
  clipNorm: z.number().min(0),
  batchSize: z.number().int().positive(),
  accumulate: z.number().int().positive(),
  epochs: z.number().int().positive(),
  seed: z.number().int().min(0),
  testClips: z.number().int().positive(),
  finalCheckpoint: z.enum(["last", "best"]),
  /** Validate every N epochs (and after the last). */
  evalEvery: z.number().int().positive(),
  flipTest: z.boolean(),
  f16: z.boolean(),
  out: z.string().min(1),
}).strict().superRefine((c, ctx) => {
  if (c.heatmapPersons === "separate" && !c.model.startsWith("motionbert")) {
    ctx.addIssue({
      code: "custom",
      path: ["heatmapPersons"],
      message: "separate (each person through the backbone) is DSTformer's; use merge or stack",
    });
  }
  for (const k of ["bones", "motion"] as const) {
    if (c[k] && c.input === "heatmap") {
      ctx.addIssue({
        code: "custom",
        path: [k],
        message: `the ${k === "bones" ? "bone" : "motion"} stream is a keypoint input: use it ` +
          "with --input kp2d or kp3d",
      });
    }
  }
});

/** The CPU-sized default: trains on the built-in dataset in a few minutes. */
export const DEFAULT_RUN: RunConfig = {
  model: "vanilla-tiny",
  recipe: "cpu",
  heatmapPersons: "merge",
  input: "heatmap",
  heatmap: "joint",
  clipLen: 16,
  sampling: "uniform",
  persons: 2,
  size: 32,
  sigma: 0.6,
  data: null,
  split: "synth",
  viewAlign: false,
  bones: false,
  motion: false,
  rotation: 0,
  noise: 0,
  shift: 0,
  flip: 0.5,
  optimizer: "adamw",
  lr: 1e-3,
  weightDecay: 0.05,
  momentum: 0.9,
  nesterov: true,
  schedule: "cosine",
  warmupEpochs: 1,
  milestones: [0.6, 0.85],
  gamma: 0.1,
  labelSmoothing: 0.1,
  clipNorm: 1,
  batchSize: 16,
  accumulate: 1,
  epochs: 8,
  seed: 1,
  testClips: 1,
  finalCheckpoint: "last",
  evalEvery: 1,
  flipTest: false,
  f16: false,
  out: "runs/latest",
};

export const PROTOCOLS: Record<string, [string, string]> = {
  "ntu60-xsub": ["xsub_train", "xsub_val"],
  "ntu60-xview": ["xview_train", "xview_val"],
  "ntu120-xsub": ["xsub_train", "xsub_val"],
  "ntu120-xset": ["xset_train", "xset_val"],
  "nw-ucla": ["train", "val"],
  "synth": ["train", "val"],
};

/** The datasets each protocol belongs to (a file's `dataset` metadata). */
export const PROTOCOL_DATASETS: Record<string, RegExp> = {
  "ntu60-xsub": /^(ntu|pyskl)/,
  "ntu60-xview": /^(ntu|pyskl)/,
  "ntu120-xsub": /^(ntu|pyskl)/,
  "ntu120-xset": /^(ntu|pyskl)/,
  "nw-ucla": /^nw-ucla$/,
  "synth": /^synth$/,
};

export function splitNames(split: string): [string, string] {
  if (PROTOCOLS[split]) return PROTOCOLS[split];
  const parts = split.split(":");
  if (parts.length === 2 && parts[0] && parts[1]) return [parts[0], parts[1]];
  throw new Error(
    `--split: "${split}" is neither a protocol (${
      Object.keys(PROTOCOLS).join(", ")
    }) nor TRAIN:VAL`,
  );
}

/** Fields of a run's config.json that record the run rather than configure it. */
const RECORD_ONLY = new Set(["modelConfig", "dataFile", "extended", "origins"]);

/** A run's config.json without its record-only fields (its configuration, to validate). */
export function configFields(saved: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(saved).filter(([k]) => !RECORD_ONLY.has(k)));
}

/** Validates a configuration; the error names the offending field as its flag. */
export function validateConfig(raw: unknown): RunConfig {
  const r = RunConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (issue.code === "unrecognized_keys") {
    const keys = (issue as { keys: string[] }).keys;
    throw new Error(
      `unknown configuration field${keys.length > 1 ? "s" : ""} ${keys.join(", ")} (flags: ` +
        "heatformer train --help)",
    );
  }
  const field = issue.path.join(".");
  const flag = `--${field.replace(/[A-Z]/g, (m) => "-" + m.toLowerCase())}`;
  throw new Error(`${flag}: ${issue.message}`);
}
