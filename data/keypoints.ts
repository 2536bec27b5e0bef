// The keypoint inputs of the baselines (MotionBERT, 2s-AGCN, CTR-GCN) from a record's
// sampled frames: (M, T, V, 3) as (x, y, score) in [-1, 1] (kp2d, with MotionBERT's
// crop_scale and random_move) or centred, scaled (x, y, z) (kp3d), optionally mirrored, as
// bones, as motion.
import type { Rng } from "../layers/init.ts";
import { type Augment, augmentClip, gatherClip2D } from "./clip.ts";
import { boneParents, flipPermutation, type JointLayout } from "./layouts.ts";
import { clipRotation } from "./rotation.ts";
import type { SkeletonRecord } from "./schema.ts";

/** How a record becomes keypoint input (see keypointInput). */
export interface KeypointOptions {
  /** Joints and channels per keypoint in the file (its layout's joint count; 2 or 3). */
  joints: number;
  channels: number;
  kind: "kp2d" | "kp3d";
  layout: JointLayout;
  /** Persons in the output (missing ones are zero); 2 unless given. */
  persons?: number;
  /** Training augmentation and its random stream; none at test time. */
  augment?: { a: Augment; rng: Rng };
  /** kp3d: turn each clip into its body's frame first. */
  viewAlign?: boolean;
  /** Each joint minus its parent (2s-AGCN's bone stream). */
  bones?: boolean;
  /** Each joint's (or bone's) step to the next frame. */
  motion?: boolean;
  /** The mirror image: x negated, left and right joints swapped (as flipClip for heatmaps). */
  flip?: boolean;
  /**
   * kp2d: MotionBERT's per-clip normalisation (crop_scale): the box of the present joints,
   * scaled by a ratio (uniform in [1, 3] in training, 2 at test), mapped to [-1, 1]; in
   * training after its random_move jitter.
   */
  cropScale?: { train: boolean; rng: Rng };
}

/** The square crop_scale maps to [-1, 1]: its corner (xs, ys) and side. */
export interface CropBox {
  xs: number;
  ys: number;
  scale: number;
}

/**
 * MotionBERT's crop_scale box of (x, y, score) rows: the square of side `ratio` x the larger
 * side of the present joints' box (score != 0), centred on it; null when fewer than 4 joints
 * are present or the box is empty.
 */
export function cropBox(x: Float32Array, ratio: number): CropBox | null {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, n = 0;
  for (let i = 0; i < x.length; i += 3) {
    if (x[i + 2] === 0) continue;
    n++;
    (x0 = Math.min(x0, x[i])), (x1 = Math.max(x1, x[i]));
    (y0 = Math.min(y0, x[i + 1])), (y1 = Math.max(y1, x[i + 1]));
  }
  const scale = Math.max(x1 - x0, y1 - y0) * ratio;
  if (n < 4 || !(scale > 0)) return null;
  return { xs: (x0 + x1 - scale) / 2, ys: (y0 + y1 - scale) / 2, scale };
}

/**
 * MotionBERT's crop_scale on (x, y, score) rows: cropBox mapped to [-1, 1] and clipped; all
 * zeros without a box.
 */
export function cropScale(x: Float32Array, ratio: number): void {
  const box = cropBox(x, ratio);
  if (!box) return void x.fill(0);
  const { xs, ys, scale } = box;
  const clip = (v: number) => Math.min(1, Math.max(-1, v));
  for (let i = 0; i < x.length; i += 3) {
    // absent joints too, as the reference does (they then sit at the box's corner, score 0)
    x[i] = clip(((x[i] - xs) / scale - 0.5) * 2);
    x[i + 1] = clip(((x[i + 1] - ys) / scale - 0.5) * 2);
  }
}

/** random_move's draws: rotation (degrees), scale, x and y translation at the clip's two ends. */
export interface Move {
  angle: [number, number];
  scale: [number, number];
  tx: [number, number];
  ty: [number, number];
}

/** MotionBERT's random_move ranges: +-10 degrees, 0.9-1.1, +-0.1. */
export function drawMove(rng: Rng): Move {
  const draw = (lo: number, hi: number): [number, number] => [
    lo + (hi - lo) * rng.uniform(),
    lo + (hi - lo) * rng.uniform(),
  ];
  return { angle: draw(-10, 10), scale: draw(0.9, 1.1), tx: draw(-0.1, 0.1), ty: draw(-0.1, 0.1) };
}

/**
 * MotionBERT's random_move on (M, T, V, 3) rows: the move's values at the clip's start and end,
 * interpolated linearly over the frames (numpy linspace over T), applied to x, y about the
 * origin, to every row (absent joints too, as the reference does; crop_scale ignores them).
 */
export function randomMove(x: Float32Array, T: number, V: number, mv: Move): void {
  for (let i = 0; i < x.length / 3; i++) {
    const t = Math.floor(i / V) % T; // rows are (person, frame, joint)
    const u = T > 1 ? t / (T - 1) : 0;
    const lerp = (p: [number, number]) => p[0] + (p[1] - p[0]) * u;
    const th = (lerp(mv.angle) * Math.PI) / 180, k = lerp(mv.scale);
    const [px, py] = [x[i * 3], x[i * 3 + 1]];
    x[i * 3] = k * (Math.cos(th) * px - Math.sin(th) * py) + lerp(mv.tx);
    x[i * 3 + 1] = k * (Math.sin(th) * px + Math.cos(th) * py) + lerp(mv.ty);
  }
}

/**
 * Mirror image of keypoint input rows (..., V, 3): joint j takes joint perm[j]'s values with x
 * negated. Inputs are centred (on the image centre or the root), so negating x mirrors them.
 */
function mirrorJoints(x: Float32Array, perm: readonly number[]): Float32Array {
  const v = perm.length, out = new Float32Array(x.length);
  for (let row = 0; row < x.length / (3 * v); row++) {
    for (let j = 0; j < v; j++) {
      const src = (row * v + perm[j]) * 3, dst = (row * v + j) * 3;
      out[dst] = -x[src];
      out[dst + 1] = x[src + 1];
      out[dst + 2] = x[src + 2];
    }
  }
  return out;
}

/** Keypoint inputs for the baselines: (M, T, V, 3) as (x, y, score) in [-1, 1] or (x, y, z). */
export function keypointInput(
  r: SkeletonRecord,
  frames: number[],
  o: KeypointOptions,
): Float32Array {
  const v = o.joints, channels = o.channels, maxPersons = o.persons ?? 2;
  let out = jointInput(r, frames, o);
  const perm = o.flip ? flipPermutation(o.layout) : null;
  if (perm) out = mirrorJoints(out, perm);
  if (!o.bones && !o.motion) return out;
  // Which joints exist, from the record (a centred joint can sit at the origin); in a mirror
  // image, joint j is the record's joint perm[j].
  const T = frames.length;
  let present: Uint8Array = new Uint8Array(maxPersons * T * v);
  for (let m = 0; m < Math.min(maxPersons, r.persons); m++) {
    frames.forEach((f, t) => {
      for (let j = 0; j < v; j++) {
        const k = ((m * r.frames + f) * v + (perm ? perm[j] : j)) * channels;
        let any = false;
        for (let c = 0; c < channels; c++) any ||= r.keypoint[k + c] !== 0;
        present[(m * T + t) * v + j] = any ? 1 : 0;
      }
    });
  }
  if (o.bones) ({ out, present } = boneInput(out, present, v, o.layout, o.kind));
  return o.motion ? motionInput(out, present, T, v, o.kind) : out;
}

/**
 * The motion streams of 2s-AGCN and CTR-GCN: each joint's (or bone's) displacement to the
 * next sampled frame; the last frame, and any step with a missing end, is zero. kp2d keeps
 * the smaller score.
 */
export function motionInput(
  x: Float32Array,
  present: Uint8Array,
  T: number,
  v: number,
  kind: "kp2d" | "kp3d",
): Float32Array {
  const out = new Float32Array(x.length);
  for (let m = 0; m < x.length / (3 * T * v); m++) {
    for (let t = 0; t + 1 < T; t++) {
      for (let j = 0; j < v; j++) {
        const i = (m * T + t) * v + j, n = i + v;
        if (present[i] && present[n]) difference(out, i, x, n, i, kind);
      }
    }
  }
  return out;
}

/**
 * The bone stream of 2s-AGCN and CTR-GCN: each joint's coordinates minus its parent's (the
 * root's bone is zero), from the joint stream. kp2d keeps a score channel: the smaller of the
 * two joints' scores. A bone with a missing end is zero.
 */
export function boneInput(
  joints: Float32Array,
  present: Uint8Array,
  v: number,
  layout: JointLayout,
  kind: "kp2d" | "kp3d",
): { out: Float32Array; present: Uint8Array } {
  const parent = boneParents(layout);
  const out = new Float32Array(joints.length);
  // A bone exists where both of its ends do (the root's zero bone where the root does).
  const has = present.map((_, i) => present[i] & present[i - (i % v) + parent[i % v]]);
  for (let f = 0; f < joints.length / (3 * v); f++) {
    for (let j = 0; j < v; j++) {
      const i = f * v + j;
      if (parent[j] !== j && has[i]) difference(out, i, joints, i, f * v + parent[j], kind);
    }
  }
  return { out, present: has };
}

/** out[at] = x[a] - x[b] for one (x, y, z) or (x, y, score) row; kp2d keeps the smaller score. */
function difference(
  out: Float32Array,
  at: number,
  x: Float32Array,
  a: number,
  b: number,
  kind: "kp2d" | "kp3d",
): void {
  out[at * 3] = x[a * 3] - x[b * 3];
  out[at * 3 + 1] = x[a * 3 + 1] - x[b * 3 + 1];
  out[at * 3 + 2] = kind === "kp2d"
    ? Math.min(x[a * 3 + 2], x[b * 3 + 2])
    : x[a * 3 + 2] - x[b * 3 + 2];
}

/** The joint stream (M, T, V, 3): kp2d's image coordinates or kp3d's centred positions. */
function jointInput(r: SkeletonRecord, frames: number[], o: KeypointOptions): Float32Array {
  return o.kind === "kp2d" ? kp2dJoints(r, frames, o) : kp3dJoints(r, frames, o);
}

/** kp2d: (x, y, score), x and y in [-1, 1] (MotionBERT's crop_scale when asked). */
function kp2dJoints(r: SkeletonRecord, frames: number[], o: KeypointOptions): Float32Array {
  const { joints: v, channels, augment } = o;
  const T = frames.length, M = o.persons ?? 2;
  const out = new Float32Array(M * T * v * 3);
  const c = gatherClip2D(r, v, channels, frames);
  if (augment) augmentClip(c, augment.a, augment.rng);
  // MotionBERT: x, y scaled to [-1, 1] by the image size (keeping the aspect), with score.
  const s = Math.max(c.width, c.height) / 2;
  for (let m = 0; m < Math.min(M, c.persons); m++) {
    for (let i = 0; i < T * v; i++) {
      const src = m * T * v + i;
      const present = c.score[src] > 0;
      out[(m * T * v + i) * 3] = present ? (c.xy[src * 2] - c.width / 2) / s : 0;
      out[(m * T * v + i) * 3 + 1] = present ? (c.xy[src * 2 + 1] - c.height / 2) / s : 0;
      out[(m * T * v + i) * 3 + 2] = c.score[src];
    }
  }
  if (o.cropScale) {
    const { train, rng } = o.cropScale;
    if (train) randomMove(out, T, v, drawMove(rng));
    cropScale(out, train ? 1 + 2 * rng.uniform() : 2);
  }
  return out;
}

/** kp3d: (x, y, z) centred on the root joint, unit scale, turned by clipRotation, noised. */
function kp3dJoints(r: SkeletonRecord, frames: number[], o: KeypointOptions): Float32Array {
  const { joints: v, channels, layout, augment, viewAlign } = o;
  const T = frames.length, M = o.persons ?? 2;
  const out = new Float32Array(M * T * v * 3);
  if (channels !== 3) {
    throw new Error(`kp3d input needs 3D keypoints; ${r.name} has ${channels} channels`);
  }
  // Centre on the root joint of the first person's first sampled frame, unit scale by the
  // largest distance from it; y up.
  const root = layout.root;
  const at = (m: number, f: number, j: number, c: number) =>
    r.keypoint[((m * r.frames + f) * v + j) * 3 + c];
  const origin = [0, 1, 2].map((c) => at(0, frames[0], root, c));
  let scale = 1e-6;
  for (let m = 0; m < Math.min(M, r.persons); m++) {
    for (const f of frames) {
      for (let j = 0; j < v; j++) {
        if (at(m, f, j, 2) === 0 && at(m, f, j, 0) === 0) continue;
        scale = Math.max(
          scale,
          Math.hypot(
            at(m, f, j, 0) - origin[0],
            at(m, f, j, 1) - origin[1],
            at(m, f, j, 2) - origin[2],
          ),
        );
      }
    }
  }
  const R = clipRotation(r, frames, v, layout, viewAlign, augment);
  const a = augment?.a, rng = augment?.rng;
  const noise = a && rng ? a.noise : 0;
  for (let m = 0; m < Math.min(M, r.persons); m++) {
    frames.forEach((f, t) => {
      for (let j = 0; j < v; j++) {
        const present = !(at(m, f, j, 0) === 0 && at(m, f, j, 1) === 0 && at(m, f, j, 2) === 0);
        if (!present) continue; // stays 0
        const px = (at(m, f, j, 0) - origin[0]) / scale,
          py = (at(m, f, j, 1) - origin[1]) / scale,
          pz = (at(m, f, j, 2) - origin[2]) / scale;
        for (let c = 0; c < 3; c++) {
          out[((m * T + t) * v + j) * 3 + c] = R[3 * c] * px + R[3 * c + 1] * py +
            R[3 * c + 2] * pz + (noise > 0 ? noise * rng!.normal() : 0);
        }
      }
    });
  }
  return out;
}
