// The PoseConv3D (pyskl) input pipeline on the host, per sample: frame sampling, pose
// compaction, resize, random resized crop, resize, flip, the study's augmentations, and the
// keypoint inputs of the baselines (../shared/spec/method.md section 3). The heatmaps
// themselves are rendered on the GPU (kernels/heatmap.ts); heatmapReference() here is the
// plain TypeScript version the tests compare against.
import { Rng } from "../layers/init.ts";
import { bodyFrameJoints, boneParents, flipPermutation, type JointLayout } from "./layouts.ts";
import type { SkeletonRecord } from "./schema.ts";

/** pyskl's UniformSampleFrames for one clip (train) or clip i of a fixed-seed test set. */
export function sampleClip(
  numFrames: number,
  clipLen: number,
  rng: Rng,
  test = false,
  clip = 0,
  clips = 1,
): number[] {
  const n = numFrames;
  let inds: number[];
  if (n < clipLen) {
    const start = test ? (n < clips ? clip : Math.floor((clip * n) / clips)) : rng.int(n);
    inds = Array.from({ length: clipLen }, (_, i) => start + i);
  } else if (n < 2 * clipLen) {
    // clipLen distinct frames in order, the surplus (n - clipLen) skipped at random positions
    const extra = n - clipLen;
    const chosen = new Set<number>();
    while (chosen.size < extra) chosen.add(rng.int(clipLen + 1));
    let offset = 0;
    inds = [];
    for (let i = 0; i < clipLen; i++) {
      if (chosen.has(i)) offset++;
      inds.push(i + offset);
    }
  } else {
    // clipLen equal segments, one frame in each (the middle for the first test clip)
    inds = [];
    for (let i = 0; i < clipLen; i++) {
      const b0 = Math.floor((i * n) / clipLen), b1 = Math.floor(((i + 1) * n) / clipLen);
      const size = Math.max(1, b1 - b0);
      inds.push(b0 + (test && clip === 0 ? Math.floor(size / 2) : rng.int(size)));
    }
  }
  return inds.map((i) => ((i % n) + n) % n);
}

/**
 * MotionBERT's resample: clipLen points on an even grid over the whole sequence
 * (i * n / clipLen); in training each moves within its cell (sequences longer than the clip)
 * or goes to the floor or the ceiling at random (shorter ones), then truncates to a frame.
 * Test clip c of `clips` shifts the grid by c / clips of a cell (clip 0 is the reference's).
 */
export function resampleClip(
  numFrames: number,
  clipLen: number,
  rng: Rng,
  test = false,
  clip = 0,
  clips = 1,
): number[] {
  const n = numFrames, cell = n / clipLen;
  const inds = Array.from({ length: clipLen }, (_, i) => {
    const even = i * cell;
    if (test) return Math.floor(even + (clip / clips) * cell);
    if (n < clipLen) return rng.uniform() < 0.5 ? Math.floor(even) : Math.ceil(even);
    return Math.floor(even + rng.uniform() * cell);
  });
  if (!test && n < clipLen) inds.sort((a, b) => a - b);
  return inds.map((i) => Math.min(n - 1, Math.max(0, i)));
}

/** How a clip's frames are chosen: pyskl's UniformSampleFrames or MotionBERT's resample. */
export type Sampling = "uniform" | "resample";
const SAMPLERS: Record<Sampling, typeof sampleClip> = {
  uniform: sampleClip,
  resample: resampleClip,
};

/** Frame indices of every clip: one random clip (train) or `clips` fixed-seed clips (test). */
export function sampleFrames(
  numFrames: number,
  clipLen: number,
  clips: number,
  rng: Rng,
  test: boolean,
  sampling: Sampling = "uniform",
): number[][] {
  const sample = SAMPLERS[sampling];
  if (!test) return [sample(numFrames, clipLen, rng)];
  const fixed = new Rng(255); // pyskl's fixed test seed (resample's test clips draw nothing)
  return Array.from(
    { length: clips },
    (_, c) => sample(numFrames, clipLen, fixed, true, c, clips),
  );
}

/** A clip's 2D keypoints (M, T, V, 2), scores (M, T, V) and the image size they live in. */
export interface Clip2D {
  persons: number;
  frames: number;
  joints: number;
  xy: Float32Array;
  score: Float32Array;
  width: number;
  height: number;
}

/** Virtual camera for 3D datasets without image coordinates (Kinect v1 intrinsics). */
const PROJ = { f: 525, cx: 320, cy: 240, w: 640, h: 480 };

/** Gathers the sampled frames' 2D keypoints: the image coordinates, or a projection of 3D. */
export function gatherClip2D(
  r: SkeletonRecord,
  v: number,
  channels: number,
  frames: number[],
): Clip2D {
  const M = r.persons, T = frames.length;
  const xy = new Float32Array(M * T * v * 2), score = new Float32Array(M * T * v);
  const has2d = channels === 2 || r.keypoint2d !== null;
  for (let m = 0; m < M; m++) {
    frames.forEach((f, t) => {
      for (let j = 0; j < v; j++) {
        const src = (m * r.frames + f) * v + j, dst = (m * T + t) * v + j;
        let x: number, y: number;
        if (channels === 2) {
          x = r.keypoint[src * 2];
          y = r.keypoint[src * 2 + 1];
        } else if (r.keypoint2d) {
          x = r.keypoint2d[src * 2];
          y = r.keypoint2d[src * 2 + 1];
        } else {
          const X = r.keypoint[src * 3], Y = r.keypoint[src * 3 + 1], Z = r.keypoint[src * 3 + 2];
          const ok = Z > 1e-3 || X !== 0 || Y !== 0;
          x = ok && Z > 1e-3 ? PROJ.f * X / Z + PROJ.cx : 0;
          y = ok && Z > 1e-3 ? -PROJ.f * Y / Z + PROJ.cy : 0;
        }
        const present = x !== 0 || y !== 0;
        xy[dst * 2] = x;
        xy[dst * 2 + 1] = y;
        score[dst] = present ? (r.score ? r.score[src] : 1) : 0;
      }
    });
  }
  const [h, w] = r.imgShape ?? (has2d && channels === 2 ? [1080, 1920] : [PROJ.h, PROJ.w]);
  return { persons: M, frames: T, joints: v, xy, score, width: w, height: h };
}

/** pyskl's PoseCompact: square box around all non-zero keypoints, padded by 25%. */
export function poseCompact(c: Clip2D, padding = 0.25, threshold = 10): void {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < c.xy.length; i += 2) {
    const x = c.xy[i], y = c.xy[i + 1];
    if (x !== 0) (x0 = Math.min(x0, x)), (x1 = Math.max(x1, x));
    if (y !== 0) (y0 = Math.min(y0, y)), (y1 = Math.max(y1, y));
  }
  if (!(x1 - x0 >= threshold) || !(y1 - y0 >= threshold)) return;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  let hw = ((x1 - x0) / 2) * (1 + padding), hh = ((y1 - y0) / 2) * (1 + padding);
  hh = Math.max(hw, hh); // hw_ratio = 1: square
  hw = Math.max(hh, hw);
  const minX = cx - hw, minY = cy - hh;
  for (let i = 0; i < c.xy.length; i += 2) {
    if (c.xy[i] !== 0) c.xy[i] -= minX;
    if (c.xy[i + 1] !== 0) c.xy[i + 1] -= minY;
  }
  c.width = 2 * hw;
  c.height = 2 * hh;
}

function scaleClip(c: Clip2D, w: number, h: number): void {
  const sx = w / c.width, sy = h / c.height;
  for (let i = 0; i < c.xy.length; i += 2) {
    c.xy[i] *= sx;
    c.xy[i + 1] *= sy;
  }
  c.width = w;
  c.height = h;
}

/** Resize so the short side is `short` (aspect kept). */
export function resizeShort(c: Clip2D, short: number): void {
  const s = short / Math.min(c.width, c.height);
  scaleClip(c, c.width * s, c.height * s);
}

export function resizeTo(c: Clip2D, w: number, h: number): void {
  scaleClip(c, w, h);
}

/** RandomResizedCrop: area 0.56-1, aspect 3/4-4/3, 10 tries, else the centre square. */
export function randomResizedCrop(
  c: Clip2D,
  rng: Rng,
  area: [number, number] = [0.56, 1],
  aspect: [number, number] = [3 / 4, 4 / 3],
): void {
  const W = c.width, H = c.height;
  let cw = Math.min(W, H), ch = cw, x0 = (W - cw) / 2, y0 = (H - ch) / 2;
  for (let i = 0; i < 10; i++) {
    const a = (area[0] + rng.uniform() * (area[1] - area[0])) * W * H;
    const logr = Math.log(aspect[0]) + rng.uniform() * (Math.log(aspect[1]) - Math.log(aspect[0]));
    const r = Math.exp(logr);
    const w = Math.round(Math.sqrt(a * r)), h = Math.round(Math.sqrt(a / r));
    if (w <= W && h <= H && w > 0 && h > 0) {
      cw = w;
      ch = h;
      x0 = Math.floor(rng.uniform() * (W - w + 1));
      y0 = Math.floor(rng.uniform() * (H - h + 1));
      break;
    }
  }
  for (let i = 0; i < c.xy.length; i += 2) {
    if (c.xy[i] !== 0) c.xy[i] -= x0;
    if (c.xy[i + 1] !== 0) c.xy[i + 1] -= y0;
  }
  c.width = cw;
  c.height = ch;
}

/** Horizontal flip: x -> W - x for non-zero x, left/right joints swapped. */
export function flipClip(c: Clip2D, layout: JointLayout): void {
  const perm = flipPermutation(layout);
  const xy = c.xy.slice(), sc = c.score.slice();
  const n = c.persons * c.frames;
  for (let p = 0; p < n; p++) {
    for (let j = 0; j < c.joints; j++) {
      const src = p * c.joints + perm[j], dst = p * c.joints + j;
      const x = xy[src * 2];
      c.xy[dst * 2] = x !== 0 ? c.width - x : 0;
      c.xy[dst * 2 + 1] = xy[src * 2 + 1];
      c.score[dst] = sc[src];
    }
  }
}

/** The study's augmentations: on 2D keypoints before rendering, or on kp3d inputs. */
export interface Augment {
  /** Max rotation, degrees (uniform +-): about the image centre in 2D, about each axis in 3D. */
  rotation: number;
  /** Gaussian noise std: a fraction of the image size in 2D, of the skeleton's unit in 3D. */
  noise: number;
  /** Max temporal shift, frames (uniform +-; the clip wraps around). */
  shift: number;
}

export const NO_AUGMENT: Augment = { rotation: 0, noise: 0, shift: 0 };

export function augmentClip(c: Clip2D, a: Augment, rng: Rng): void {
  if (a.rotation > 0) {
    const th = ((rng.uniform() * 2 - 1) * a.rotation * Math.PI) / 180;
    const cs = Math.cos(th), sn = Math.sin(th), cx = c.width / 2, cy = c.height / 2;
    for (let i = 0; i < c.xy.length; i += 2) {
      if (c.xy[i] === 0 && c.xy[i + 1] === 0) continue;
      const x = c.xy[i] - cx, y = c.xy[i + 1] - cy;
      c.xy[i] = cs * x - sn * y + cx;
      c.xy[i + 1] = sn * x + cs * y + cy;
    }
  }
  if (a.noise > 0) {
    const s = a.noise * Math.max(c.width, c.height);
    for (let i = 0; i < c.xy.length; i += 2) {
      if (c.xy[i] === 0 && c.xy[i + 1] === 0) continue;
      c.xy[i] += rng.normal() * s;
      c.xy[i + 1] += rng.normal() * s;
    }
  }
  if (a.shift > 0) {
    const k = Math.round((rng.uniform() * 2 - 1) * a.shift);
    if (k !== 0) {
      const T = c.frames, per = c.joints;
      const xy = c.xy.slice(), sc = c.score.slice();
      for (let m = 0; m < c.persons; m++) {
        for (let t = 0; t < T; t++) {
          const src = m * T + (((t - k) % T) + T) % T, dst = m * T + t;
          c.xy.set(xy.subarray(src * per * 2, (src + 1) * per * 2), dst * per * 2);
          c.score.set(sc.subarray(src * per, (src + 1) * per), dst * per);
        }
      }
    }
  }
}

export interface HeatmapSpec {
  /** Heatmap size (square), e.g. 56. */
  size: number;
  sigma: number;
  joints: boolean;
  limbs: boolean;
}

/** A crop of the centre, w x h. */
export function centreCrop(c: Clip2D, w: number, h: number): void {
  const x0 = (c.width - w) / 2, y0 = (c.height - h) / 2;
  for (let i = 0; i < c.xy.length; i += 2) {
    if (c.xy[i] !== 0) c.xy[i] -= x0;
    if (c.xy[i + 1] !== 0) c.xy[i + 1] -= y0;
  }
  c.width = w;
  c.height = h;
}

/**
 * PoseConv3D's deterministic or random geometry for one clip: compact, resize to the canvas
 * (short side 64 for the study's 56), then a random resized crop (train) or the centre crop of
 * the output size (test), resize to size x size, optional flip, augment. The centre crop keeps
 * test views at the training scale: a median training crop (area 0.78 of the canvas) is
 * resized by 56 / (0.88 x 64) = 0.99, the centre crop by 1. (Resizing the whole canvas to 56
 * instead drew test skeletons at 0.875 of that.) pyskl renders its test views at 64 x 64, which
 * a model with a fixed token grid cannot take.
 */
export function transformClip(
  c: Clip2D,
  o: {
    size: number;
    train: boolean;
    flip: boolean;
    layout: JointLayout;
    augment: Augment;
    rng: Rng;
  },
): void {
  poseCompact(c);
  const canvas = Math.round((o.size * 64) / 56); // 64 for the study's 56
  if (o.train) {
    resizeShort(c, canvas);
    randomResizedCrop(c, o.rng);
  } else {
    resizeTo(c, canvas, canvas);
    centreCrop(c, o.size, o.size);
  }
  resizeTo(c, o.size, o.size);
  if (o.flip) flipClip(c, o.layout);
  augmentClip(c, o.augment, o.rng);
}

/** Channels of a heatmap volume for a layout. */
export function heatmapChannels(layout: JointLayout, spec: HeatmapSpec): number {
  return (spec.joints ? layout.joints.length : 0) + (spec.limbs ? layout.limbs.length : 0);
}

const EPS = 1e-3;

/**
 * The reference renderer (tests and benchmarks only): C x T x H x W for one clip, exactly
 * pyskl's generate_a_heatmap / generate_a_limb_heatmap, persons merged by max. Into `into`
 * (zeroed first) when given, else into a new array.
 */
export function heatmapReference(
  c: Clip2D,
  layout: JointLayout,
  spec: HeatmapSpec,
  into?: Float32Array,
): Float32Array {
  const S = spec.size, T = c.frames, V = c.joints, sg = spec.sigma;
  const C = heatmapChannels(layout, spec);
  if (into && into.length !== C * T * S * S) {
    throw new RangeError(`heatmapReference: ${into.length} elements for ${C} x ${T} x ${S} x ${S}`);
  }
  const out = into ? into.fill(0) : new Float32Array(C * T * S * S);
  const win = (
    mu: number,
  ) => [Math.max(Math.trunc(mu - 3 * sg), 0), Math.min(Math.trunc(mu + 3 * sg) + 1, S)];
  for (let m = 0; m < c.persons; m++) {
    for (let t = 0; t < T; t++) {
      const base = (m * T + t) * V;
      if (spec.joints) {
        for (let j = 0; j < V; j++) {
          const s = c.score[base + j];
          if (s < EPS) continue;
          const mx = c.xy[(base + j) * 2], my = c.xy[(base + j) * 2 + 1];
          const [x0, x1] = win(mx), [y0, y1] = win(my);
          for (let y = y0; y < y1; y++) {
            for (let x = x0; x < x1; x++) {
              const v = Math.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * sg * sg)) * s;
              const o = ((j * T + t) * S + y) * S + x;
              if (v > out[o]) out[o] = v;
            }
          }
        }
      }
      if (spec.limbs) {
        const off = spec.joints ? V : 0;
        layout.limbs.forEach(([a, b], l) => {
          const sa = c.score[base + a], sb = c.score[base + b];
          if (sa < EPS || sb < EPS) return;
          const ax = c.xy[(base + a) * 2], ay = c.xy[(base + a) * 2 + 1];
          const bx = c.xy[(base + b) * 2], by = c.xy[(base + b) * 2 + 1];
          const coef = Math.min(sa, sb);
          const x0 = Math.max(Math.trunc(Math.min(ax, bx) - 3 * sg), 0),
            x1 = Math.min(Math.trunc(Math.max(ax, bx) + 3 * sg) + 1, S);
          const y0 = Math.max(Math.trunc(Math.min(ay, by) - 3 * sg), 0),
            y1 = Math.min(Math.trunc(Math.max(ay, by) + 3 * sg) + 1, S);
          const dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
          for (let y = y0; y < y1; y++) {
            for (let x = x0; x < x1; x++) {
              let d2: number;
              if (len2 < 1e-12) d2 = (x - ax) ** 2 + (y - ay) ** 2;
              else {
                const u = Math.min(1, Math.max(0, ((x - ax) * dx + (y - ay) * dy) / len2));
                d2 = (x - ax - u * dx) ** 2 + (y - ay - u * dy) ** 2;
              }
              const v = Math.exp(-d2 / (2 * sg * sg)) * coef;
              const o = (((off + l) * T + t) * S + y) * S + x;
              if (v > out[o]) out[o] = v;
            }
          }
        });
      }
    }
  }
  return out;
}

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

/**
 * MotionBERT's crop_scale on (x, y, score) rows: the square of side `ratio` x the larger side
 * of the present joints' box (score != 0), centred on the box, mapped to [-1, 1] and clipped.
 * Fewer than 4 present joints, or an empty box, give all zeros.
 */
export function cropScale(x: Float32Array, ratio: number): void {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, n = 0;
  for (let i = 0; i < x.length; i += 3) {
    if (x[i + 2] === 0) continue;
    n++;
    (x0 = Math.min(x0, x[i])), (x1 = Math.max(x1, x[i]));
    (y0 = Math.min(y0, x[i + 1])), (y1 = Math.max(y1, x[i + 1]));
  }
  const scale = Math.max(x1 - x0, y1 - y0) * ratio;
  if (n < 4 || !(scale > 0)) return void x.fill(0);
  const xs = (x0 + x1 - scale) / 2, ys = (y0 + y1 - scale) / 2;
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

function jointInput(r: SkeletonRecord, frames: number[], o: KeypointOptions): Float32Array {
  const { joints: v, channels, kind, layout, augment, viewAlign } = o;
  const T = frames.length, M = o.persons ?? 2;
  const out = new Float32Array(M * T * v * 3);
  if (kind === "kp2d") {
    const c = gatherClip2D(r, v, channels, frames);
    if (augment) augmentClip(c, { ...augment.a, noise: augment.a.noise }, augment.rng);
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

/**
 * The rotation a 3D clip goes through: into the body's own frame (viewAlign: the camera's
 * viewpoint no longer shows), then CTR-GCN's training augmentation for NW-UCLA, one rotation
 * per clip about the three axes, each angle uniform in +-rotation.
 */
export function clipRotation(
  r: SkeletonRecord,
  frames: number[],
  v: number,
  layout: JointLayout,
  viewAlign: boolean | undefined,
  augment: { a: Augment; rng: Rng } | undefined,
): readonly number[] {
  const R = viewAlign ? bodyFrame(r, frames, v, layout) : IDENTITY3;
  if (!augment || augment.a.rotation <= 0) return R;
  const { a, rng } = augment;
  const ang = () => (rng.uniform() * 2 - 1) * a.rotation * Math.PI / 180;
  const [x, y, z] = [ang(), ang(), ang()];
  const [cx, sx, cy, sy, cz, sz] = [
    Math.cos(x),
    Math.sin(x),
    Math.cos(y),
    Math.sin(y),
    Math.cos(z),
    Math.sin(z),
  ];
  // Rz Ry Rx, after the body frame
  return mul3([
    cz * cy,
    cz * sy * sx - sz * cx,
    cz * sy * cx + sz * sx,
    sz * cy,
    sz * sy * sx + cz * cx,
    sz * sy * cx - cz * sx,
    -sy,
    cy * sx,
    cy * cx,
  ], R);
}

/**
 * A 3D clip as a 2D pseudo-image for heatmaps, seen along the body's own depth axis: each
 * joint turned by `R` (clipRotation) and projected orthographically (x right, y down, 1 px per
 * millimetre). PoseCompact then frames it as it frames image coordinates.
 */
export function alignedClip2D(
  r: SkeletonRecord,
  v: number,
  frames: number[],
  R: readonly number[],
): Clip2D {
  const M = r.persons, T = frames.length;
  const xy = new Float32Array(M * T * v * 2), score = new Float32Array(M * T * v);
  const k = (m: number, f: number, j: number) => ((m * r.frames + f) * v + j) * 3;
  const o = k(0, frames[0], 0);
  const [ox, oy, oz] = [r.keypoint[o], r.keypoint[o + 1], r.keypoint[o + 2]];
  const CANVAS = 4000; // px: keeps every body of a few metres at positive coordinates
  for (let m = 0; m < M; m++) {
    frames.forEach((f, t) => {
      for (let j = 0; j < v; j++) {
        const s = k(m, f, j), X = r.keypoint[s], Y = r.keypoint[s + 1], Z = r.keypoint[s + 2];
        if (X === 0 && Y === 0 && Z === 0) continue; // absent: stays 0 with score 0
        const [px, py, pz] = [X - ox, Y - oy, Z - oz];
        const dst = (m * T + t) * v + j;
        xy[dst * 2] = CANVAS / 2 + 1000 * (R[0] * px + R[1] * py + R[2] * pz);
        xy[dst * 2 + 1] = CANVAS / 2 - 1000 * (R[3] * px + R[4] * py + R[5] * pz);
        score[dst] = r.score ? r.score[(m * r.frames + f) * v + j] : 1;
      }
    });
  }
  return { persons: M, frames: T, joints: v, xy, score, width: CANVAS, height: CANVAS };
}

/** Row-major 3 x 3 identity (never mutated: rotations are built as new arrays). */
const IDENTITY3: readonly number[] = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** Row-major 3 x 3 product a b. */
function mul3(a: readonly number[], b: readonly number[]): number[] {
  return Array.from({ length: 9 }, (_, k) => {
    const i = Math.floor(k / 3), j = k % 3;
    return a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
  });
}

/**
 * The rotation into the first person's body frame over the clip (the view-invariant
 * transform of VA-LSTM / SGN): y along the spine (mean of shoulders minus mean of hips), x
 * along the body's left-to-right axis made orthogonal to it (right minus left shoulders and
 * hips), z = x cross y. Rows are the new axes, so R p gives p's body-frame coordinates.
 * The identity when the layout lacks those joints or the clip never shows them.
 */
export function bodyFrame(
  r: SkeletonRecord,
  frames: number[],
  v: number,
  layout: JointLayout,
): readonly number[] {
  const frame = bodyFrameJoints(layout);
  if (!frame) return IDENTITY3; // preflight refuses --view-align for such layouts
  const [ls, rs, lh, rh] = frame;
  const up = [0, 0, 0], side = [0, 0, 0];
  for (const f of frames) {
    const p = (i: number) => [0, 1, 2].map((c) => r.keypoint[(f * v + i) * 3 + c]);
    const pts = [ls, rs, lh, rh].map(p);
    if (pts.some((q) => q[0] === 0 && q[1] === 0 && q[2] === 0)) continue;
    for (let c = 0; c < 3; c++) {
      up[c] += pts[0][c] + pts[1][c] - pts[2][c] - pts[3][c];
      side[c] += pts[1][c] + pts[3][c] - pts[0][c] - pts[2][c];
    }
  }
  const norm = (q: number[]) => Math.hypot(q[0], q[1], q[2]);
  const ny = norm(up);
  if (ny < 1e-9) return IDENTITY3;
  const y = up.map((c) => c / ny);
  const d = side[0] * y[0] + side[1] * y[1] + side[2] * y[2];
  const xr = side.map((c, k) => c - d * y[k]);
  const nx = norm(xr);
  if (nx < 1e-9) return IDENTITY3;
  const x = xr.map((c) => c / nx);
  const z = [x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]];
  return [...x, ...y, ...z];
}
