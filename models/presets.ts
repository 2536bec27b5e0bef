// The study's models (Table 2) as presets, plus CPU-sized presets of each family. Where the
// study leaves a dimension open, the choice is documented here and in the README; every
// study preset's parameter count is within 3% of Table 2 (tests/models_test.ts).
import type { Runtime } from "../runtime/runtime.ts";
import type { Experiment, Layer } from "../training/experiment.ts";
import { DEFAULT_CONFIG, type ModelConfig, type ModelInput } from "./config.ts";
import { DSTformer, tokenJoints, tokenSize } from "./dstformer.ts";
import { VanillaTransformer } from "./vanilla.ts";
import { Vivit } from "./vivit.ts";

/** Run fields a preset sets for one input kind (on top of its heatmap input). */
export type InputDefaults = Partial<
  Pick<Experiment["input"], "clipLen" | "sampling" | "size" | "persons">
>;

export interface Preset {
  name: string;
  description: string;
  /** Table 2's parameter count (millions), for the study's presets. */
  studyParams?: number;
  /** Its default input is config.input; these change it for keypoint inputs. */
  keypointInput?: InputDefaults;
  /** The training recipe (training/recipes.ts) a run of this preset follows by default. */
  recipe: string;
  config: ModelConfig;
}

const STUDY_HEATMAP_48: ModelInput = {
  kind: "heatmap",
  channels: 17,
  frames: 48,
  size: 56,
  persons: 2,
};
const STUDY_HEATMAP_56: ModelInput = {
  kind: "heatmap",
  channels: 17,
  frames: 56,
  size: 56,
  persons: 2,
};
const CPU_HEATMAP: ModelInput = { kind: "heatmap", channels: 25, frames: 16, size: 32, persons: 2 };

const p = (
  name: string,
  description: string,
  o: Partial<ModelConfig>,
  run: { recipe: string; studyParams?: number; keypointInput?: InputDefaults },
): Preset => ({ name, description, ...run, config: { ...DEFAULT_CONFIG, ...o } });

// The study gives no recipe. MotionBERT rows follow MotionBERT's (its keypoint rows reproduce
// MotionBERT's own from-scratch 87.7%, so they used its pipeline: 243 resampled frames); the
// ViViT rows follow scenic's; the vanilla rows, a ViT trained like ViViT (chosen).
const MOTIONBERT_RUN = {
  recipe: "motionbert",
  keypointInput: { clipLen: 243, sampling: "resample" as const },
};
const CPU_RUN = { recipe: "cpu" };
/** MotionBERT's DSTformer at its published size (the study's and the official checkpoints'). */
const DSTFORMER_512: Partial<ModelConfig> = {
  family: "motionbert",
  width: 512,
  depth: 5,
  heads: 8,
  mlpRatio: 2,
  repDim: 512,
  headHidden: 2048,
  dropPath: 0,
};

export const PRESETS: Preset[] = [
  // The study (NTU60, 17 HRNet joints, (T, H, W) = (48, 56, 56) / (56, 56, 56) for ViViT)
  p("vanilla", "vanilla transformer, frame tokens; d 156, 4 layers, 12 heads (chosen)", {
    family: "vanilla",
    width: 156,
    depth: 4,
    heads: 12,
    input: STUDY_HEATMAP_48,
  }, { recipe: "vivit", studyParams: 9.5 }),
  p("vanilla-big", "big vanilla; d 1040, 3 layers, 16 heads (chosen)", {
    family: "vanilla",
    width: 1040,
    depth: 3,
    heads: 16,
    input: STUDY_HEATMAP_48,
  }, { recipe: "vivit", studyParams: 94.7 }),
  p("vivit-m1", "ViViT model 1, tubelet 8x8x8, d 256, 8 layers, MLP 1024", {
    family: "vivit-m1",
    width: 256,
    depth: 8,
    heads: 8,
    tubelet: [8, 8, 8],
    input: STUDY_HEATMAP_56,
  }, { recipe: "vivit", studyParams: 8.65 }),
  p("vivit-m1-big", "big ViViT model 1, tubelet 8x8x8, d 768, 8 layers, MLP 3072", {
    family: "vivit-m1",
    width: 768,
    depth: 8,
    heads: 12,
    tubelet: [8, 8, 8],
    input: STUDY_HEATMAP_56,
  }, { recipe: "vivit", studyParams: 63.7 }),
  p("vivit-m1-small-tubelet", "ViViT model 1, tubelet 4x8x8, d 256, 8 layers", {
    family: "vivit-m1",
    width: 256,
    depth: 8,
    heads: 8,
    tubelet: [4, 8, 8],
    input: STUDY_HEATMAP_56,
  }, { recipe: "vivit", studyParams: 7.6 }),
  p("vivit-m2", "ViViT model 2 (factorised encoder), tubelet 8x8x8, d 640, 4 + 4 layers (chosen)", {
    family: "vivit-m2",
    width: 640,
    spatialDepth: 4,
    temporalDepth: 4,
    heads: 10,
    tubelet: [8, 8, 8],
    input: STUDY_HEATMAP_56,
  }, { recipe: "vivit", studyParams: 44.4 }),
  p(
    "motionbert",
    "DSTformer d 512, depth 5, 8 heads, MLP x2, rep 512, head 2048; joint tokens of 2 x 56 x 56",
    { ...DSTFORMER_512, heatmapPersons: "stack", input: { ...STUDY_HEATMAP_48, channels: 34 } },
    { ...MOTIONBERT_RUN, studyParams: 63.5 },
  ),
  // MotionBERT's own action model (configs/action/MB_ft_NTU60_xsub.yaml), the shape of its
  // official checkpoints (models/motionbert_names.ts loads them; docs/motionbert.md)
  p(
    "motionbert-base",
    "MotionBERT's DSTformer on (x, y, conf) of 17 H36M joints x 243 frames: d 512, depth 5, " +
      "8 heads, MLP x2, rep 512, head 2048",
    {
      ...DSTFORMER_512,
      dropout: 0,
      input: { kind: "kp2d", channels: 17, frames: 243, size: 56, persons: 2 },
    },
    MOTIONBERT_RUN,
  ),
  // CPU-sized (the built-in dataset: 25 NTU joints, 16 frames of 32 x 32)
  p("vanilla-tiny", "CPU-sized vanilla: d 64, 2 layers, joint stem (Fourier-initialised)", {
    family: "vanilla",
    width: 64,
    depth: 2,
    heads: 4,
    stem: "joint",
    spatialInit: "fourier",
    headDropout: 0.2,
    dropPath: 0,
    input: CPU_HEATMAP,
  }, CPU_RUN),
  p("vivit-m1-tiny", "CPU-sized ViViT model 1: tubelet 4x8x8, d 64, 2 layers", {
    family: "vivit-m1",
    width: 64,
    depth: 2,
    heads: 4,
    tubelet: [4, 8, 8],
    headDropout: 0.2,
    dropPath: 0,
    input: CPU_HEATMAP,
  }, CPU_RUN),
  p("vivit-m2-tiny", "CPU-sized ViViT model 2: tubelet 4x8x8, d 64, 1 + 1 layers", {
    family: "vivit-m2",
    width: 64,
    spatialDepth: 1,
    temporalDepth: 1,
    heads: 4,
    tubelet: [4, 8, 8],
    headDropout: 0.2,
    dropPath: 0,
    input: CPU_HEATMAP,
  }, CPU_RUN),
  p("motionbert-tiny", "CPU-sized DSTformer: d 32, 1 level, rep 32, head 64", {
    family: "motionbert",
    width: 32,
    depth: 1,
    heads: 4,
    mlpRatio: 2,
    repDim: 32,
    headHidden: 64,
    headDropout: 0.2,
    dropPath: 0,
    input: CPU_HEATMAP,
  }, CPU_RUN),
];

export function presetByName(name: string): Preset {
  const pr = PRESETS.find((x) => x.name === name);
  if (!pr) {
    throw new Error(`unknown model "${name}" (presets: ${PRESETS.map((x) => x.name).join(", ")})`);
  }
  return pr;
}

/**
 * A preset as a partial experiment: its whole model section, its input and its recipe. Its
 * keypoint input (`keypointInput`) is the input layer's (training/resolve.ts).
 */
export function presetLayer(pr: Preset): Layer {
  const { input, classes: _classes, heatmapPersons, ...model } = pr.config;
  return {
    model: { preset: pr.name, ...model, tubelet: [...model.tubelet] },
    input: {
      kind: input.kind,
      clipLen: input.frames,
      size: input.size,
      persons: input.persons,
      heatmapPersons,
    },
    run: { recipe: pr.recipe },
  };
}

export type ActionModel = VanillaTransformer | Vivit | DSTformer;

export function buildModel(rt: Runtime, c: ModelConfig, seed = 0): ActionModel {
  switch (c.family) {
    case "vanilla":
      return new VanillaTransformer(rt, c, seed);
    case "vivit-m1":
    case "vivit-m2":
      return new Vivit(rt, c, seed);
    case "motionbert":
      return new DSTformer(rt, c, seed);
  }
}

// ---- analytical size and cost (no GPU memory needed) ------------------------------------

const lin = (i: number, o: number) => i * o + o;
const block = (d: number, h: number) =>
  2 * d + lin(d, 3 * d) + lin(d, d) + 2 * d + lin(d, h) + lin(h, d);

const jointStem = (c: ModelConfig) => c.stem === "joint" && c.input.kind === "heatmap";

/** Parameters of the vanilla frame embedding: flat (C*H*W -> d) or the joint stem. */
function vanillaEmbedParams(c: ModelConfig): number {
  const i = c.input, hw = i.size * i.size;
  if (jointStem(c)) return lin(hw, c.stemDim) + lin(i.channels * c.stemDim, c.width);
  return lin(i.kind === "heatmap" ? i.channels * hw : i.persons * i.channels * 3, c.width);
}

/** Multiply-adds of the vanilla frame embedding per frame. */
function vanillaEmbedMacs(c: ModelConfig): number {
  const i = c.input, hw = i.size * i.size;
  if (jointStem(c)) return i.channels * hw * c.stemDim + i.channels * c.stemDim * c.width;
  return (i.kind === "heatmap" ? i.channels * hw : i.persons * i.channels * 3) * c.width;
}

export function parameterCount(c: ModelConfig): number {
  const d = c.width, h = Math.round(d * c.mlpRatio), i = c.input, K = c.classes;
  switch (c.family) {
    case "vanilla": {
      const cls = c.pool === "cls" ? 1 : 0;
      return vanillaEmbedParams(c) + cls * d + (i.frames + cls) * d + c.depth * block(d, h) +
        2 * d + lin(d, K);
    }
    case "vivit-m1":
    case "vivit-m2": {
      const [kt, kh, kw] = c.tubelet;
      const P = i.channels * kt * kh * kw, nt = i.frames / kt, ns = (i.size / kh) * (i.size / kw);
      if (c.family === "vivit-m1") {
        return lin(P, d) + d + (nt * ns + 1) * d + c.depth * block(d, h) + 2 * d + lin(d, K);
      }
      return lin(P, d) + d + (ns + 1) * d + c.spatialDepth * block(d, h) + 2 * d + d +
        (nt + 1) * d +
        c.temporalDepth * block(d, h) + 2 * d + lin(d, K);
    }
    case "motionbert": {
      const dimIn = tokenSize(c), J = tokenJoints(c);
      const axis = 2 * d + lin(d, 3 * d) + lin(d, d) + 2 * d + lin(d, h) + lin(h, d);
      const level = 4 * axis + lin(2 * d, 2);
      const head = K === 0
        ? lin(c.repDim, 3) // the pretraining head
        : lin(J * c.repDim, c.headHidden) + 2 * c.headHidden + lin(c.headHidden, K);
      return lin(dimIn, d) + J * d + i.frames * d + c.depth * level + 2 * d + lin(d, c.repDim) +
        head;
    }
  }
}

/** Forward FLOPs per sample (multiply-adds x 2 of the matmuls and attention). */
export function flopsPerSample(c: ModelConfig): number {
  const d = c.width, h = Math.round(d * c.mlpRatio), i = c.input;
  const enc = (L: number, n: number, seqs = 1) =>
    seqs * L * (2 * n * (4 * d * d + 2 * d * h) + 4 * n * n * d);
  switch (c.family) {
    case "vanilla": {
      const n = i.frames + 1;
      return 2 * i.frames * vanillaEmbedMacs(c) + enc(c.depth, n) + 2 * d * c.classes;
    }
    case "vivit-m1":
    case "vivit-m2": {
      const [kt, kh, kw] = c.tubelet;
      const P = i.channels * kt * kh * kw, nt = i.frames / kt, ns = (i.size / kh) * (i.size / kw);
      const embed = 2 * nt * ns * P * d;
      return c.family === "vivit-m1"
        ? embed + enc(c.depth, nt * ns + 1)
        : embed + enc(c.spatialDepth, ns + 1, nt) + enc(c.temporalDepth, nt + 1);
    }
    case "motionbert": {
      const dimIn = tokenSize(c), J = tokenJoints(c), T = i.frames;
      const persons = i.kind === "heatmap" && c.heatmapPersons !== "separate" ? 1 : i.persons;
      const axis = (n: number, seqs: number) =>
        seqs * (2 * n * (4 * d * d + 2 * d * h) + 4 * n * n * d);
      const level = 2 * (axis(J, T) + axis(T, J)) + 2 * T * J * 4 * d;
      return persons * (2 * T * J * dimIn * d + c.depth * level + 2 * T * J * d * c.repDim) +
        2 * J * c.repDim * c.headHidden;
    }
  }
}
