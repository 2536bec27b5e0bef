// Model configurations: typed records with one commented default per field, and the input
// a model takes. Presets are data (models/presets.ts).
import type { InputKind } from "../data/batches.ts";

export type Family = "vanilla" | "vivit-m1" | "vivit-m2" | "motionbert";
export type HeatmapPersons = "merge" | "stack" | "separate";

export interface ModelInput {
  kind: InputKind;
  /** heatmap: channels of the input (joints and/or limbs, x persons unless merged); keypoints: joints V */
  channels: number;
  /** Frames per clip T. */
  frames: number;
  /** Heatmap side H = W (heatmap input only). */
  size: number;
  /** Persons M (keypoint input only; heatmaps merge persons). */
  persons: number;
}

export interface ModelConfig {
  family: Family;
  /** Token width d. */
  width: number;
  /** Encoder layers (vanilla, ViViT model 1); depth levels (MotionBERT). */
  depth: number;
  /** ViViT model 2: spatial and temporal encoder layers. */
  spatialDepth: number;
  temporalDepth: number;
  heads: number;
  /** MLP hidden = width x mlpRatio (4 for ViT-style, 2 for MotionBERT). */
  mlpRatio: number;
  /** ViViT tubelet (t, h, w); vanilla heatmap tokens are whole frames. */
  tubelet: [number, number, number];
  /**
   * vanilla, heatmap input: how a frame becomes a token. "flat": one linear map of all C*H*W
   * values; "joint": one spatial map shared by every channel (H*W -> stemDim), then a
   * linear map of the C*stemDim channel features.
   */
  stem: "flat" | "joint";
  stemDim: number;
  /**
   * How a map over a heatmap's pixels starts (the joint stem's spatial map, DSTformer's joint
   * embedding): "normal" (truncated normal, std 0.02) or "fourier" (smooth functions of the
   * pixel position: the joint's score and position from the first step).
   */
  spatialInit: "normal" | "fourier";
  /**
   * Heatmap input with several persons: "merge" them by max into one set of channels
   * (PoseConv3D); "stack" each person's plane of a joint into one token (DSTformer: a token
   * of M x H x W values, the study's 63.5M); "separate": each person through the backbone,
   * averaged in the head (MotionBERT's treatment of persons).
   */
  heatmapPersons: HeatmapPersons;
  /** vanilla: "cls" token or "mean" over tokens. */
  pool: "cls" | "mean";
  /** Dropout inside blocks, before the head, and the stochastic depth rate (max). */
  dropout: number;
  headDropout: number;
  dropPath: number;
  /** MotionBERT: representation width and action-head hidden width. */
  repDim: number;
  headHidden: number;
  classes: number;
  input: ModelInput;
}

export const DEFAULT_CONFIG: ModelConfig = {
  family: "vanilla",
  width: 128,
  depth: 4,
  spatialDepth: 4,
  temporalDepth: 4,
  heads: 4,
  mlpRatio: 4,
  tubelet: [8, 8, 8],
  stem: "flat",
  stemDim: 32,
  spatialInit: "normal",
  heatmapPersons: "merge",
  pool: "cls",
  dropout: 0,
  headDropout: 0.5,
  dropPath: 0.1,
  repDim: 512,
  headHidden: 2048,
  classes: 60,
  input: { kind: "heatmap", channels: 17, frames: 48, size: 56, persons: 2 },
};
