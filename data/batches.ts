// From records to model inputs: host-side keypoint arrays for a batch (the pipeline of
// data/pipeline.ts), then one upload and one GPU render straight into the model's input
// tensor (N, C, T, H, W), or the keypoint inputs (N, M, T, V, 3) for the baselines.
import { heatmapChannels, HeatmapRenderer, renderHeatmaps } from "../kernels/heatmap.ts";
import type { Rng } from "../layers/init.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { type JointLayout, layoutByName } from "./layouts.ts";
import { type Augment, gatherClip2D, NO_AUGMENT, transformClip } from "./clip.ts";
import { keypointInput } from "./keypoints.ts";
import { motionPair } from "./motion_pretrain.ts";
import { alignedClip2D, clipRotation } from "./rotation.ts";
import { sampleFrames, type Sampling } from "./sampling.ts";
import type { DatasetMeta, SkeletonRecord } from "./schema.ts";

export type InputKind = "heatmap" | "kp2d" | "kp3d";

export interface InputSpec {
  kind: InputKind;
  /** Frames per clip (the study: 48 for MotionBERT, 56 for ViViT). */
  clipLen: number;
  /** Heatmap side (56 in the study) and sigma (0.6). */
  size: number;
  sigma: number;
  joints: boolean;
  limbs: boolean;
  /** Persons per sample (2: a zero second person when absent). */
  persons: number;
  /** Frame sampling (default: pyskl's uniform sampling). */
  sampling?: Sampling;
  /** Heatmaps: each person in its own channels (N, M*C, T, S, S) instead of merged. */
  splitPersons?: boolean;
  /** kp3d: turn each clip into the body's frame (data/rotation.ts bodyFrame). */
  viewAlign?: boolean;
  /** Keypoints: the bone stream (joint minus parent) instead of the joints. */
  bones?: boolean;
  /** Keypoints: the motion stream (displacement to the next frame) of the joints or bones. */
  motion?: boolean;
  /**
   * What the batch teaches: action labels (the default), or MotionBERT's pretraining task
   * (data/motion_pretrain.ts: a noisy, masked 2D view of 3D data in, the 3D motion as target).
   */
  objective?: "action" | "motion3d";
}

export const DEFAULT_INPUT: InputSpec = {
  kind: "heatmap",
  clipLen: 48,
  size: 56,
  sigma: 0.6,
  joints: true,
  limbs: false,
  persons: 2,
};

export interface BatchMode {
  train: boolean;
  /** Test-time clips per sample (PoseConv3D: 10). */
  clips: number;
  /** Test-time flipped copy of every clip. */
  flipTest: boolean;
  /** Training flip probability (PoseConv3D: 0.5). */
  flipProb: number;
  augment: Augment;
}

export const TRAIN_MODE: BatchMode = {
  train: true,
  clips: 1,
  flipTest: false,
  flipProb: 0.5,
  augment: NO_AUGMENT,
};
export const TEST_MODE: BatchMode = {
  train: false,
  clips: 1,
  flipTest: false,
  flipProb: 0,
  augment: NO_AUGMENT,
};

/** A batch on the host: `views` rows per sample (clips x flips), in sample-major order. */
export interface HostBatch {
  samples: number;
  views: number;
  names: string[];
  labels: Int32Array;
  /** heatmap: (N*views, M, T, V, 2) pixels and (N*views, M, T, V) scores */
  xy?: Float32Array;
  score?: Float32Array;
  /** kp2d / kp3d: (N*views, M, T, V, 3) */
  kp?: Float32Array;
  /** motion3d: the 3D motion to recover, (N*views, T, V, 3) root-relative */
  target?: Float32Array;
}

/** Rows a sample becomes: one in training, clips x (1 or 2 with flips) at test time. */
export function viewsPerSample(mode: BatchMode): number {
  return mode.train ? 1 : mode.clips * (mode.flipTest ? 2 : 1);
}

/** Samples per forward pass so that a pass has at most `rows` rows (at least one sample). */
export function samplesPerPass(rows: number, mode: BatchMode): number {
  return Math.max(1, Math.floor(rows / viewsPerSample(mode)));
}

/** Channels of a heatmap input: joints and/or limbs, per person when persons are split. */
export function inputChannels(layout: JointLayout, spec: InputSpec): number {
  return heatmapChannels(layout, spec) * (spec.splitPersons ? spec.persons : 1);
}

export function inputShape(spec: InputSpec, layout: JointLayout, rows: number): number[] {
  const v = layout.joints.length;
  return spec.kind === "heatmap"
    ? [rows, inputChannels(layout, spec), spec.clipLen, spec.size, spec.size]
    : [rows, spec.persons, spec.clipLen, v, 3];
}

export function hostBatch(
  records: SkeletonRecord[],
  meta: DatasetMeta,
  spec: InputSpec,
  mode: BatchMode,
  rng: Rng,
): HostBatch {
  const layout = layoutByName(meta.layout);
  const V = layout.joints.length, M = spec.persons, T = spec.clipLen;
  const views = viewsPerSample(mode);
  const rows = records.length * views;
  const hb: HostBatch = {
    samples: records.length,
    views,
    names: records.map((r) => r.name),
    labels: new Int32Array(records.length),
  };
  records.forEach((r, i) => (hb.labels[i] = r.label));
  if (spec.kind === "heatmap") {
    hb.xy = new Float32Array(rows * M * T * V * 2);
    hb.score = new Float32Array(rows * M * T * V);
  } else {
    hb.kp = new Float32Array(rows * M * T * V * 3);
  }
  if (spec.objective === "motion3d") hb.target = new Float32Array(rows * T * V * 3);
  let row = 0;
  for (const r of records) {
    const clips = sampleFrames(r.frames, T, mode.clips, rng, !mode.train, spec.sampling);
    for (const frames of clips) {
      for (
        const flip of mode.train
          ? [rng.uniform() < mode.flipProb]
          : mode.flipTest
          ? [false, true]
          : [false]
      ) {
        // A flipped training clip of an asymmetric class is a sample of its mirror class.
        if (mode.train && flip && meta.flipLabels) {
          hb.labels[row] = meta.flipLabels[r.label];
        }
        if (spec.objective === "motion3d") {
          // person 0 of the row; the pair flips itself (3D and 2D together)
          const pair = motionPair(r, frames, layout, mode.train ? rng : undefined);
          hb.kp!.set(pair.input, row * M * T * V * 3);
          hb.target!.set(pair.target, row * T * V * 3);
        } else if (spec.kind === "heatmap") {
          // 3D skeletons with viewAlign: seen from the body's front, rotated in 3D (not 2D).
          const aligned = spec.viewAlign && meta.channels === 3;
          const c = aligned
            ? alignedClip2D(
              r,
              V,
              frames,
              clipRotation(
                r,
                frames,
                V,
                layout,
                true,
                mode.train ? { a: mode.augment, rng } : undefined,
              ),
            )
            : gatherClip2D(r, V, meta.channels, frames);
          transformClip(c, {
            size: spec.size,
            train: mode.train,
            flip,
            layout,
            augment: aligned ? { ...mode.augment, rotation: 0 } : mode.augment,
            rng,
          });
          const mm = Math.min(M, c.persons);
          hb.xy!.set(c.xy.subarray(0, mm * T * V * 2), row * M * T * V * 2);
          hb.score!.set(c.score.subarray(0, mm * T * V), row * M * T * V);
        } else {
          const kp = keypointInput(r, frames, {
            joints: V,
            channels: meta.channels,
            kind: spec.kind,
            layout,
            persons: M,
            augment: mode.augment.noise || mode.augment.rotation || mode.augment.shift
              ? { a: mode.augment, rng }
              : undefined,
            viewAlign: spec.viewAlign,
            bones: spec.bones,
            motion: spec.motion,
            flip,
            cropScale: spec.kind === "kp2d" ? { train: mode.train, rng } : undefined,
          });
          hb.kp!.set(kp, row * M * T * V * 3);
        }
        row++;
      }
    }
  }
  return hb;
}

/**
 * Uploads a host batch and renders it into `into` (the model's input tensor, allocated when
 * absent): returns the input (rows = samples x views) and the labels (samples).
 */
export function deviceBatch(
  rt: Runtime,
  hb: HostBatch,
  meta: DatasetMeta,
  spec: InputSpec,
  into?: Tensor,
): { input: Tensor; labels: Tensor } {
  const layout = layoutByName(meta.layout);
  const V = layout.joints.length, M = spec.persons, T = spec.clipLen;
  const rows = hb.samples * hb.views;
  const labels = rt.tensor(hb.labels, [hb.samples], "i32", { name: "labels" });
  if (spec.kind !== "heatmap") {
    const input = into ?? rt.empty([rows, M, T, V, 3], "f32", "keypoints");
    rt.write(input, hb.kp!);
    return { input, labels };
  }
  const xy = rt.tensor(hb.xy!, [rows, M, T, V, 2], "f32", { name: "xy" });
  const score = rt.tensor(hb.score!, [rows, M, T, V], "f32", { name: "score" });
  const input = renderHeatmaps(rt, xy, score, {
    size: spec.size,
    sigma: spec.sigma,
    joints: spec.joints,
    limbs: spec.limbs ? layout.limbs : [],
    splitPersons: spec.splitPersons,
  }, into);
  return { input, labels };
}

/** The persistent renderer for an input spec (null for keypoint inputs). */
export function rendererFor(
  rt: Runtime,
  spec: InputSpec,
  layout: JointLayout,
): HeatmapRenderer | null {
  return spec.kind === "heatmap"
    ? new HeatmapRenderer(rt, {
      size: spec.size,
      sigma: spec.sigma,
      joints: spec.joints,
      limbs: spec.limbs ? layout.limbs : [],
      splitPersons: spec.splitPersons,
    })
    : null;
}
