// A clip's 2D keypoints on the host and PoseConv3D's geometry on them, per sample: gather the
// sampled frames, pose compaction, resize, random resized crop or centre crop, resize, flip,
// and the study's augmentations (rotation, noise, temporal shift).
import type { Rng } from "../layers/init.ts";
import { flipPermutation, type JointLayout } from "./layouts.ts";
import type { SkeletonRecord } from "./schema.ts";

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
