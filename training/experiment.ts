// One experiment as one nested value: data, input, augmentation, model, optimiser, schedule,
// evaluation and the run. The zod schema below is the single statement of every leaf (its
// type, bounds and help text); the flags (cli/flags.ts), the config files, the run record and
// the origins of a resolved run are all keyed by the leaf's path ("optim.lr").
import { z } from "zod";
import { DEFAULT_CONFIG, type Family, type ModelConfig } from "../models/config.ts";

const FAMILIES = ["vanilla", "vivit-m1", "vivit-m2", "motionbert"] as const;
const INPUTS = ["heatmap", "kp2d", "kp3d"] as const;

/** The inputs each model family takes (ViViT's tubelets cut heatmap volumes). */
export const FAMILY_INPUTS: Record<Family, readonly (typeof INPUTS)[number][]> = {
  "vanilla": INPUTS,
  "vivit-m1": ["heatmap"],
  "vivit-m2": ["heatmap"],
  "motionbert": INPUTS,
};

const count = () => z.number().int().positive();
const rate = () => z.number().min(0).max(0.9);

const DataSchema = z.object({
  path: z.string().min(1).nullable().describe("dataset (.arrow); none: the built-in synthetic one"),
  split: z.string().min(1).describe(
    "ntu60-xsub | ntu60-xview | nw-ucla | synth | TRAIN:VAL (A+B joins splits)",
  ),
  layout: z.string().min(1).nullable().describe(
    "read the data converted to this joint layout (h36m17: MotionBERT's order); none: its own",
  ),
  layoutScores: z.enum(["mapped", "source"]).describe(
    "with data.layout: mapped (averaged like the joints) | source (MotionBERT's: COCO order)",
  ),
  trainFraction: z.number().gt(0).max(1).describe(
    "train on this fraction of the training split (per class, the same clips for every seed)",
  ),
}).strict();

const InputSchema = z.object({
  kind: z.enum(INPUTS).describe("heatmap | kp2d | kp3d"),
  heatmap: z.enum(["joint", "limb", "both"]).describe("heatmap channels: joint | limb | both"),
  clipLen: count().describe("frames per clip"),
  sampling: z.enum(["uniform", "resample"]).describe(
    "frames: uniform (pyskl) | resample (MotionBERT)",
  ),
  persons: z.number().int().min(1).max(4).describe("persons per sample (NW-UCLA has 1)"),
  size: z.number().int().min(8).describe("heatmap side"),
  sigma: z.number().positive().describe("heatmap Gaussian sigma"),
  heatmapPersons: z.enum(["merge", "stack", "separate"]).describe(
    "heatmaps of several persons: merge | stack | separate (DSTformer)",
  ),
  viewAlign: z.boolean().describe("kp3d: turn each clip into the body's frame"),
  bones: z.boolean().describe("keypoint inputs: the bone stream (each joint minus its parent)"),
  motion: z.boolean().describe("keypoint inputs: the motion stream (step to the next frame)"),
}).strict();

const AugmentSchema = z.object({
  rotation: z.number().min(0).max(180).describe("max rotation (degrees)"),
  noise: z.number().min(0).max(1).describe("Gaussian noise (fraction of the image size)"),
  shift: z.number().int().min(0).describe("max temporal shift (frames)"),
  flip: z.number().min(0).max(1).describe("horizontal flip probability"),
}).strict();

const ModelSchema = z.object({
  preset: z.string().min(1).describe("preset the model section starts from (heatformer models)"),
  family: z.enum(FAMILIES).describe("vanilla | vivit-m1 | vivit-m2 | motionbert"),
  width: count().describe("token width d"),
  depth: count().describe("encoder layers (vanilla, ViViT model 1); levels (DSTformer)"),
  spatialDepth: count().describe("ViViT model 2: spatial encoder layers"),
  temporalDepth: count().describe("ViViT model 2: temporal encoder layers"),
  heads: count().describe("attention heads (divide the width)"),
  mlpRatio: z.number().positive().describe("MLP hidden width / width"),
  tubelet: z.tuple([count(), count(), count()]).describe("ViViT tubelet t,h,w"),
  stem: z.enum(["flat", "joint"]).describe("vanilla on heatmaps: flat | joint frame embedding"),
  stemDim: count().describe("joint stem: features per channel"),
  spatialInit: z.enum(["normal", "fourier"]).describe(
    "heatmap pixel maps start as normal | fourier",
  ),
  pool: z.enum(["cls", "mean"]).describe("vanilla: cls token or mean over tokens"),
  dropout: rate().describe("dropout inside blocks"),
  dropPath: rate().describe("stochastic depth (max rate)"),
  headDropout: rate().describe("dropout before the classifier"),
  repDim: count().describe("DSTformer: representation width"),
  headHidden: count().describe("DSTformer: action-head hidden width"),
}).strict();

const OptimSchema = z.object({
  optimizer: z.enum(["adamw", "sgd"]).describe("adamw | sgd"),
  lr: z.number().positive().describe("peak learning rate (at lr-batch samples per step)"),
  lrBatch: z.number().int().min(0).describe(
    "the batch the lr is given for; the run scales it linearly (0: the run's own batch)",
  ),
  weightDecay: z.number().min(0).describe("weight decay"),
  momentum: z.number().min(0).max(1).describe("SGD momentum"),
  nesterov: z.boolean().describe("SGD: Nesterov momentum"),
  labelSmoothing: z.number().min(0).max(0.99).describe("cross-entropy label smoothing"),
  clipNorm: z.number().min(0).describe("global gradient-norm clip (0: off)"),
  batchSize: count().describe("samples per optimiser step"),
  accumulate: count().describe("micro-batches per step"),
  headLrScale: z.number().min(0).describe(
    "the classifier head's lr over the backbone's (MotionBERT fine-tunes at 10)",
  ),
  freeze: z.enum(["none", "backbone"]).describe(
    "backbone: train the head alone (a linear probe of a pretrained encoder)",
  ),
}).strict();

const ScheduleSchema = z.object({
  kind: z.enum(["cosine", "step", "constant", "exponential"]).describe(
    "cosine | step | constant | exponential",
  ),
  warmupEpochs: z.number().min(0).describe("linear warm-up (epochs)"),
  milestones: z.array(z.number().min(0).max(1)).describe("step schedule: fractions of training"),
  gamma: z.number().positive().describe("step schedule factor; exponential: factor per epoch"),
}).strict();

const EvalSchema = z.object({
  clips: count().describe("final evaluation: clips per sample"),
  flip: z.boolean().describe("final evaluation: add flipped views"),
  checkpoint: z.enum(["last", "best"]).describe(
    "final evaluation: last | best (picked on the validation split)",
  ),
  every: count().describe("validate every N epochs (and after the last)"),
}).strict();

const RunSchema = z.object({
  recipe: z.string().min(1).describe("training recipe (heatformer recipes)"),
  epochs: count().describe("epochs"),
  seed: z.number().int().min(0).describe("seed (init, data order, augmentation, dropout)"),
  out: z.string().min(1).nullable().describe("run folder (none: runs/PRESET-TIME)"),
  f16: z.boolean().describe("mixed precision: f16 activations, f32 weights (needs shader-f16)"),
  objective: z.enum(["action", "motion3d"]).describe(
    "action: classify | motion3d: MotionBERT's pretraining (noisy masked 2D in, 3D out)",
  ),
  init: z.string().min(1).nullable().describe(
    "start from the weights of a run folder or checkpoint (matching names and shapes)",
  ),
}).strict();

const GROUPS = {
  data: DataSchema,
  input: InputSchema,
  augment: AugmentSchema,
  model: ModelSchema,
  optim: OptimSchema,
  schedule: ScheduleSchema,
  eval: EvalSchema,
  run: RunSchema,
};
const GroupsSchema = z.object(GROUPS).strict();

/** The data: a file and its train/validation splits. */
export interface DataSection {
  path: string | null;
  split: string;
  layout: string | null;
  /** How scores follow a layout conversion (data/layout_map.ts ScoreOrder). */
  layoutScores: "mapped" | "source";
  trainFraction: number;
}

/** The input pipeline: what a sample becomes before the model. */
export interface InputSection {
  kind: "heatmap" | "kp2d" | "kp3d";
  heatmap: "joint" | "limb" | "both";
  clipLen: number;
  sampling: "uniform" | "resample";
  persons: number;
  size: number;
  sigma: number;
  heatmapPersons: "merge" | "stack" | "separate";
  viewAlign: boolean;
  bones: boolean;
  motion: boolean;
}

export interface AugmentSection {
  rotation: number;
  noise: number;
  shift: number;
  flip: number;
}

/**
 * The model: models/config.ts's ModelConfig less what the input and the data decide (the
 * input, the classes, the persons' treatment), and the preset it starts from.
 */
export type ModelSection = Omit<ModelConfig, "input" | "classes" | "heatmapPersons"> & {
  preset: string;
};

export interface OptimSection {
  optimizer: "adamw" | "sgd";
  lr: number;
  lrBatch: number;
  weightDecay: number;
  momentum: number;
  nesterov: boolean;
  labelSmoothing: number;
  clipNorm: number;
  batchSize: number;
  accumulate: number;
  headLrScale: number;
  freeze: "none" | "backbone";
}

export interface ScheduleSection {
  kind: "cosine" | "step" | "constant" | "exponential";
  warmupEpochs: number;
  milestones: number[];
  gamma: number;
}

export interface EvalSection {
  clips: number;
  flip: boolean;
  checkpoint: "last" | "best";
  every: number;
}

export interface RunSection {
  recipe: string;
  epochs: number;
  seed: number;
  out: string | null;
  f16: boolean;
  /** What the run learns: action classes, or MotionBERT's pretraining task (3D from 2D). */
  objective: "action" | "motion3d";
  init: string | null;
}

/** One experiment: every leaf a run varies, by section. */
export interface Experiment {
  data: DataSection;
  input: InputSection;
  augment: AugmentSection;
  model: ModelSection;
  optim: OptimSection;
  schedule: ScheduleSection;
  eval: EvalSection;
  run: RunSection;
}

// The interfaces and the schema state the same leaves: a leaf added to one and not the other
// fails to compile here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type AssertTrue<T extends true> = T;
type _SchemaMatchesInterface = AssertTrue<Same<z.infer<typeof GroupsSchema>, Experiment>>;

export type Group = keyof Experiment;

/** A partial experiment: a preset, a recipe, a config file, the flags. */
export type Layer = { [G in Group]?: Partial<Experiment[G]> };

/** Checks across leaves; each names the path it is about. */
function crossChecks(e: Experiment, ctx: z.RefinementCtx): void {
  const bad = (path: string, message: string) =>
    ctx.addIssue({ code: "custom", path: path.split("."), message });
  if (e.model.width % e.model.heads) {
    bad("model.heads", `${e.model.heads} does not divide the width ${e.model.width}`);
  }
  if (!FAMILY_INPUTS[e.model.family].includes(e.input.kind)) {
    bad("input.kind", `${e.model.family} takes ${FAMILY_INPUTS[e.model.family].join(" or ")}`);
  }
  if (e.input.heatmapPersons === "separate" && e.model.family !== "motionbert") {
    bad(
      "input.heatmapPersons",
      "separate (each person through the backbone) is DSTformer's; use merge or stack",
    );
  }
  for (const k of ["bones", "motion"] as const) {
    if (e.input[k] && e.input.kind === "heatmap") {
      bad(
        `input.${k}`,
        `the ${
          k === "bones" ? "bone" : "motion"
        } stream is a keypoint input (input.kind kp2d or kp3d)`,
      );
    }
  }
}

const ExperimentSchema = GroupsSchema.superRefine((e, ctx) => crossChecks(e as Experiment, ctx));

const LayerSchema = z.object(
  Object.fromEntries(
    Object.entries(GROUPS).map(([g, s]) => [g, s.partial().strict().optional()]),
  ),
).strict();

/** A leaf of the schema: its path, group, key, zod type and help. */
export interface Leaf {
  path: string;
  group: Group;
  key: string;
  /** The leaf's value kind, for parsing a flag's text. */
  kind: "number" | "string" | "enum" | "boolean" | "numbers";
  nullable: boolean;
  options?: readonly string[];
  help: string;
}

function leafOf(group: Group, key: string, s: z.ZodType): Leaf {
  const help = s.description ?? "";
  let t = s as unknown as { def: { type: string; innerType?: unknown }; options?: string[] };
  const nullable = t.def.type === "nullable";
  if (nullable) t = t.def.innerType as typeof t;
  const type = t.def.type;
  const kind = type === "tuple" || type === "array"
    ? "numbers"
    : (type as "number" | "string" | "enum" | "boolean");
  return { path: `${group}.${key}`, group, key, kind, nullable, options: t.options, help };
}

/** Every leaf, in schema order. */
export const LEAVES: readonly Leaf[] = Object.entries(GROUPS).flatMap(([g, s]) =>
  Object.entries(s.shape).map(([k, v]) => leafOf(g as Group, k, v as z.ZodType))
);

export function leafByPath(path: string): Leaf | undefined {
  return LEAVES.find((l) => l.path === path);
}

/** A configuration mistake: exit 2. The message names the leaf's path (and its flag). */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

function describeIssues(issues: z.core.$ZodIssue[], where: string): string {
  const issue = issues[0];
  const base = issue.path.join(".");
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => (base ? `${base}.${k}` : k));
    return `${where}unknown ${keys.length > 1 ? "keys" : "key"} ${keys.join(", ")} (paths: ` +
      "heatformer train --print-config)";
  }
  return `${where}${base || "(top level)"}: ${issue.message}`;
}

/** Validates a whole experiment; the error names the first offending path. */
export function validateExperiment(raw: unknown, where = ""): Experiment {
  const r = ExperimentSchema.safeParse(raw);
  if (r.success) return r.data as Experiment;
  throw new ConfigError(describeIssues(r.error.issues, where));
}

/** Validates a partial experiment (a file, a preset, a recipe): known paths, typed values. */
export function validateLayer(raw: unknown, where = ""): Layer {
  const r = LayerSchema.safeParse(raw);
  if (r.success) return r.data as Layer;
  throw new ConfigError(describeIssues(r.error.issues, where));
}

/** The leaves a layer sets, as [path, value]. */
export function layerLeaves(layer: Layer): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [g, values] of Object.entries(layer)) {
    for (const [k, v] of Object.entries(values ?? {})) {
      if (v !== undefined) out.push([`${g}.${k}`, v]);
    }
  }
  return out;
}

/** A leaf's value by path. */
export function getLeaf(e: Experiment | Layer, path: string): unknown {
  const [g, k] = path.split(".");
  return (e as Record<string, Record<string, unknown> | undefined>)[g]?.[k];
}

/** Sets a leaf by path (creating its group in a layer). */
export function setLeaf(e: Experiment | Layer, path: string, value: unknown): void {
  const [g, k] = path.split(".");
  const groups = e as Record<string, Record<string, unknown>>;
  (groups[g] ??= {})[k] = value;
}

/** The model section's defaults: models/config.ts's, less what the data decides. */
function modelDefaults(): Omit<ModelSection, "preset"> {
  const { input: _i, classes: _c, heatmapPersons: _h, ...m } = DEFAULT_CONFIG;
  return { ...m, tubelet: [...m.tubelet] };
}

/**
 * The defaults: a CPU-sized run of the built-in dataset. Every run layers a preset and a
 * recipe over these; the `cpu` recipe is these values.
 */
export const DEFAULT_EXPERIMENT: Experiment = {
  data: { path: null, split: "synth", layout: null, layoutScores: "mapped", trainFraction: 1 },
  input: {
    kind: "heatmap",
    heatmap: "joint",
    clipLen: 16,
    sampling: "uniform",
    persons: 2,
    size: 32,
    sigma: 0.6,
    heatmapPersons: "merge",
    viewAlign: false,
    bones: false,
    motion: false,
  },
  augment: { rotation: 0, noise: 0, shift: 0, flip: 0.5 },
  model: { preset: "vanilla-tiny", ...modelDefaults() },
  optim: {
    optimizer: "adamw",
    lr: 1e-3,
    lrBatch: 0,
    weightDecay: 0.05,
    momentum: 0.9,
    nesterov: true,
    labelSmoothing: 0.1,
    clipNorm: 1,
    batchSize: 16,
    accumulate: 1,
    headLrScale: 1,
    freeze: "none",
  },
  schedule: { kind: "cosine", warmupEpochs: 1, milestones: [0.6, 0.85], gamma: 0.1 },
  eval: { clips: 1, flip: false, checkpoint: "last", every: 1 },
  run: {
    recipe: "cpu",
    epochs: 8,
    seed: 1,
    out: null,
    f16: false,
    objective: "action",
    init: null,
  },
};

/** The learning rate a run uses: optim.lr, scaled linearly from optim.lrBatch to its batch. */
export function effectiveLr(e: Experiment): number {
  const { lr, lrBatch, batchSize } = e.optim;
  return lrBatch > 0 ? (lr * batchSize) / lrBatch : lr;
}

/** The model section as the model builders take it (the input and classes from the data). */
export function modelFields(
  e: Experiment,
): Omit<ModelConfig, "input" | "classes"> {
  const { preset: _preset, ...m } = e.model;
  return { ...m, tubelet: [...m.tubelet], heatmapPersons: e.input.heatmapPersons };
}

/** An experiment with its run folder decided: what the trainer runs. */
export type RunExperiment = Experiment & { run: { out: string } };

/** The experiment with its folder: run.out, or runs/PRESET-TIME for one that names none. */
export function withRunFolder(e: Experiment, now: Date = new Date()): RunExperiment {
  const out = e.run.out ?? `runs/${e.model.preset}-${now.toISOString().replace(/[:.]/g, "-")}`;
  return { ...e, run: { ...e.run, out } };
}

/** A parameter's learning rate over the schedule's: the head's scale, 0 for a frozen backbone. */
export function lrScaleOf(e: Experiment): (name: string) => number {
  return (name) =>
    name.startsWith("head.") ? e.optim.headLrScale : e.optim.freeze === "backbone" ? 0 : 1;
}
