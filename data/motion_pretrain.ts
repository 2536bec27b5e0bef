// MotionBERT's pretraining pairs from 3D skeletons: a noisy, masked 2D view in, the 3D motion
// out (Zhu et al. 2023, section 3.2). A clip of person 0's 3D joints is turned about the
// vertical axis (training), projected orthographically to (x, y) in image orientation (y
// down), normalised by crop_scale exactly as the fine-tuning input is (data/keypoints.ts: the
// same box maps the 3D target, so input and target share one scale), then noised and masked;
// the target is root-relative (MotionBERT's rootrel).
//
// Where this differs from MotionBERT (its train.py, augmentation.py, MB_pretrain.yaml):
// - its noise is fitted to a 2D detector's errors (synthetic_noise.pth, not published as
//   numbers); here it has the same structure: per-joint offsets drawn at keyframes and
//   interpolated over the frames, a small per-frame jitter, a confidence falling with the offset;
// - it masks whole frames per batch (one draw of T), here per sample;
// - the turn (+-45 degrees) and crop_scale's ratio in [1, 3] are heatformer's: its 3D data come
//   in camera coordinates from several views already, heatformer's from Kinect's few;
// - its clips are 243 contiguous frames; here the experiment's sampling picks them, so the
//   velocity term sees the sampled steps;
// - no 2D-only data (its train_2d curriculum), and no scale-normalised loss term
//   (training/motion_loss.ts).
import type { Rng } from "../layers/init.ts";
import { cropBox } from "./keypoints.ts";
import { flipPermutation, type JointLayout } from "./layouts.ts";
import type { SkeletonRecord } from "./schema.ts";

/** The corruption of the 2D input, in crop_scale units ([-1, 1] spans the crop). */
export interface MotionNoise {
  /** Std of the per-joint offsets at keyframes, and frames between keyframes. */
  keyframeStd: number;
  keyframeEvery: number;
  /** Std of the independent per-frame jitter. */
  frameStd: number;
  /** Offset at which the confidence falls to exp(-1/2). */
  confidenceScale: number;
  /** MotionBERT's mask_ratio (joints) and mask_T_ratio (whole frames). */
  jointMask: number;
  frameMask: number;
  /** Largest turn about the vertical axis (degrees) and the flip probability. */
  rotation: number;
  flip: number;
}

export const MOTION_NOISE: MotionNoise = {
  keyframeStd: 0.02,
  keyframeEvery: 9,
  frameStd: 0.002,
  confidenceScale: 0.05,
  jointMask: 0.05,
  frameMask: 0.1,
  rotation: 45,
  flip: 0.5,
};

/** Whether the 3 values at `o` are a joint (all zeros: absent). */
export function present3(x: ArrayLike<number>, o: number): boolean {
  return x[o] !== 0 || x[o + 1] !== 0 || x[o + 2] !== 0;
}

/** One training pair: input (T, V, 3) as (x, y, confidence), target (T, V, 3) root-relative. */
export interface MotionPair {
  input: Float32Array;
  target: Float32Array;
}

/** Person 0's 3D joints at `frames`, turned by `angle` (radians) about the vertical axis
 * through the clip's mean root, with y pointing down as in images. */
function clip3d(
  r: SkeletonRecord,
  frames: number[],
  v: number,
  root: number,
  angle: number,
): Float32Array {
  const T = frames.length, out = new Float32Array(T * v * 3);
  let cx = 0, cz = 0;
  for (const f of frames) {
    (cx += r.keypoint[(f * v + root) * 3]), (cz += r.keypoint[(f * v + root) * 3 + 2]);
  }
  (cx /= T), (cz /= T);
  const c = Math.cos(angle), s = Math.sin(angle);
  frames.forEach((f, t) => {
    for (let j = 0; j < v; j++) {
      const k = (f * v + j) * 3, o = (t * v + j) * 3;
      const [x, y, z] = [r.keypoint[k], r.keypoint[k + 1], r.keypoint[k + 2]];
      if (!present3(r.keypoint, k)) continue; // absent stays absent (zeros)
      out[o] = c * (x - cx) + s * (z - cz);
      out[o + 1] = -y;
      out[o + 2] = -s * (x - cx) + c * (z - cz);
    }
  });
  return out;
}

/** Per-joint offsets (T, V, 2): keyframe draws interpolated linearly, plus per-frame jitter. */
function offsets(T: number, v: number, n: MotionNoise, rng: Rng): Float32Array {
  const keys = Math.max(2, Math.ceil((T - 1) / n.keyframeEvery) + 1);
  const k = Float32Array.from({ length: keys * v * 2 }, () => rng.normal() * n.keyframeStd);
  const out = new Float32Array(T * v * 2);
  for (let t = 0; t < T; t++) {
    const u = T > 1 ? (t / (T - 1)) * (keys - 1) : 0, a = Math.min(keys - 2, Math.floor(u));
    const w = u - a;
    for (let i = 0; i < v * 2; i++) {
      out[t * v * 2 + i] = (1 - w) * k[a * v * 2 + i] + w * k[(a + 1) * v * 2 + i] +
        rng.normal() * n.frameStd;
    }
  }
  return out;
}

/**
 * A pretraining pair from a 3D record (channels 3). Training (`rng` given) turns, flips, picks
 * the crop ratio in [1, 3], noises and masks; evaluation (no rng) keeps the clean 2D view at
 * ratio 2. A clip without a crop box (under 4 joints) is all zeros.
 */
export function motionPair(
  r: SkeletonRecord,
  frames: number[],
  layout: JointLayout,
  rng?: Rng,
  n: MotionNoise = MOTION_NOISE,
): MotionPair {
  const v = layout.joints.length, T = frames.length;
  const angle = rng ? ((rng.uniform() * 2 - 1) * n.rotation * Math.PI) / 180 : 0;
  let p: Float32Array = clip3d(r, frames, v, layout.root, angle);
  if (rng && rng.uniform() < n.flip) p = mirror(p, flipPermutation(layout));
  const input = new Float32Array(T * v * 3), target = new Float32Array(T * v * 3);
  for (let i = 0; i < T * v; i++) {
    input.set([p[i * 3], p[i * 3 + 1], present3(p, i * 3) ? 1 : 0], i * 3);
  }
  const box = cropBox(input, rng ? 1 + 2 * rng.uniform() : 2);
  if (!box) return { input: new Float32Array(T * v * 3), target };
  const k = 2 / box.scale, x0 = box.xs + box.scale / 2, y0 = box.ys + box.scale / 2;
  for (let t = 0; t < T; t++) {
    const root = (t * v + layout.root) * 3;
    if (input[root + 2] === 0) {
      input.fill(0, t * v * 3, (t + 1) * v * 3); // no root, no root-relative target: a blank frame
      continue;
    }
    for (let j = 0; j < v; j++) {
      const o = (t * v + j) * 3;
      if (input[o + 2] === 0) continue;
      target[o] = (p[o] - p[root]) * k;
      target[o + 1] = (p[o + 1] - p[root + 1]) * k;
      target[o + 2] = (p[o + 2] - p[root + 2]) * k;
      input[o] = (p[o] - x0) * k;
      input[o + 1] = (p[o + 1] - y0) * k;
    }
  }
  if (rng) corrupt(input, T, v, n, rng);
  return { input, target };
}

/** Noise with its confidence, then the joint and frame masks (zeros, as MotionBERT's). */
function corrupt(x: Float32Array, T: number, v: number, n: MotionNoise, rng: Rng): void {
  const d = offsets(T, v, n, rng);
  for (let t = 0; t < T; t++) {
    const frameOff = rng.uniform() < n.frameMask;
    for (let j = 0; j < v; j++) {
      const o = (t * v + j) * 3, q = (t * v + j) * 2;
      if (frameOff || rng.uniform() < n.jointMask || x[o + 2] === 0) {
        x.fill(0, o, o + 3);
        continue;
      }
      x[o] += d[q];
      x[o + 1] += d[q + 1];
      const dist2 = d[q] * d[q] + d[q + 1] * d[q + 1];
      x[o + 2] = Math.exp(-dist2 / (2 * n.confidenceScale * n.confidenceScale));
    }
  }
}

/** The mirror image of (T, V, 3) 3D joints: x negated, left and right swapped. */
function mirror(p: Float32Array, perm: readonly number[]): Float32Array {
  const v = perm.length, out = new Float32Array(p.length);
  for (let row = 0; row < p.length / (3 * v); row++) {
    for (let j = 0; j < v; j++) {
      const s = (row * v + perm[j]) * 3, o = (row * v + j) * 3;
      out.set(present3(p, s) ? [-p[s], p[s + 1], p[s + 2]] : [0, 0, 0], o);
    }
  }
  return out;
}
