// MoveNet's crop that follows the person (TF Hub's MoveNet tutorial, tfjs-models' MoveNet
// detector): the first frame is seen whole, padded to a square; each next frame is cropped to a
// square around the previous frame's hips, wide enough for the torso (x 1.9) and every
// confident keypoint (x 1.2). Plus the crop itself, as tf.image.cropAndResize does it.
import type { Frame } from "../video.ts";

/** A crop in coordinates normalised to the image (may reach outside it: padding). */
export interface CropRegion {
  yMin: number;
  xMin: number;
  yMax: number;
  xMax: number;
}

/** The tutorial's MIN_CROP_KEYPOINT_SCORE. */
export const MIN_CROP_KEYPOINT_SCORE = 0.2;

// COCO-17 indices
const L_SHOULDER = 5, R_SHOULDER = 6, L_HIP = 11, R_HIP = 12;
const TORSO = [L_SHOULDER, R_SHOULDER, L_HIP, R_HIP];

/** The whole image, padded to a square (centred). */
export function initCropRegion(height: number, width: number): CropRegion {
  if (width > height) {
    const h = width / height, yMin = (height / 2 - width / 2) / height;
    return { yMin, xMin: 0, yMax: yMin + h, xMax: 1 };
  }
  const w = height / width, xMin = (width / 2 - height / 2) / width;
  return { yMin: 0, xMin, yMax: 1, xMax: xMin + w };
}

/** A shoulder and a hip seen with some confidence. */
function torsoVisible(scores: Float32Array): boolean {
  const ok = (j: number) => scores[j] > MIN_CROP_KEYPOINT_SCORE;
  return (ok(L_HIP) || ok(R_HIP)) && (ok(L_SHOULDER) || ok(R_SHOULDER));
}

/** The largest distance along y and x from (cy, cx) to the given joints. */
function range(xy: Float32Array, joints: number[], cy: number, cx: number): [number, number] {
  let dy = 0, dx = 0;
  for (const j of joints) {
    dy = Math.max(dy, Math.abs(cy - xy[2 * j + 1]));
    dx = Math.max(dx, Math.abs(cx - xy[2 * j]));
  }
  return [dy, dx];
}

/**
 * The next frame's crop from this frame's keypoints (`xy`: 17 x (x, y) pixels, `scores`: 17):
 * a square around the hips' midpoint, else (torso unseen, or wider than the image) the whole
 * image.
 */
export function determineCropRegion(
  xy: Float32Array,
  scores: Float32Array,
  height: number,
  width: number,
): CropRegion {
  if (!torsoVisible(scores)) return initCropRegion(height, width);
  const cy = (xy[2 * L_HIP + 1] + xy[2 * R_HIP + 1]) / 2, cx = (xy[2 * L_HIP] + xy[2 * R_HIP]) / 2;
  const [torsoY, torsoX] = range(xy, TORSO, cy, cx);
  const confident = [...scores.keys()].filter((j) => scores[j] >= MIN_CROP_KEYPOINT_SCORE);
  const [bodyY, bodyX] = range(xy, confident, cy, cx);
  let half = Math.max(torsoX * 1.9, torsoY * 1.9, bodyY * 1.2, bodyX * 1.2);
  half = Math.min(half, Math.max(cx, width - cx, cy, height - cy));
  if (half > Math.max(width, height) / 2) return initCropRegion(height, width);
  return {
    yMin: (cy - half) / height,
    xMin: (cx - half) / width,
    yMax: (cy + half) / height,
    xMax: (cx + half) / width,
  };
}

/** Bilinear taps along one axis: for each output index its two source indices and weight
 * (-1 where the sample falls outside the image). */
function taps(lo: number, hi: number, n: number, m: number) {
  const i0 = new Int32Array(m), i1 = new Int32Array(m), f = new Float32Array(m);
  const step = m > 1 ? (hi - lo) * (n - 1) / (m - 1) : 0;
  for (let i = 0; i < m; i++) {
    const v = lo * (n - 1) + i * step;
    if (v < 0 || v > n - 1) {
      i0[i] = -1;
      continue;
    }
    i0[i] = Math.floor(v), (i1[i] = Math.min(i0[i] + 1, n - 1)), (f[i] = v - i0[i]);
  }
  return { i0, i1, f };
}

/**
 * The crop resized to rows x cols by bilinear sampling, 0 outside the image, as RGB bytes
 * (MoveNet's input, which takes them as int32), with tf.image.cropAndResize's sample positions:
 * y = yMin (H - 1) + i (yMax - yMin) (H - 1) / (rows - 1).
 */
export function cropResize(frame: Frame, c: CropRegion, rows: number, cols = rows): Uint8Array {
  const { width: W, height: H, rgb } = frame;
  const out = new Uint8Array(rows * cols * 3);
  const ys = taps(c.yMin, c.yMax, H, rows), xs = taps(c.xMin, c.xMax, W, cols);
  for (let i = 0; i < rows; i++) {
    if (ys.i0[i] < 0) continue;
    const r0 = ys.i0[i] * W * 3, r1 = ys.i1[i] * W * 3, fy = ys.f[i];
    for (let j = 0; j < cols; j++) {
      if (xs.i0[j] < 0) continue;
      const c0 = xs.i0[j] * 3, c1 = xs.i1[j] * 3, fx = xs.f[j], o = (i * cols + j) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const a = rgb[r0 + c0 + ch], b = rgb[r0 + c1 + ch];
        const top = a + (b - a) * fx;
        const bottom = rgb[r1 + c0 + ch] + (rgb[r1 + c1 + ch] - rgb[r1 + c0 + ch]) * fx;
        out[o + ch] = top + (bottom - top) * fy; // truncated, as tf.cast to int32 does
      }
    }
  }
  return out;
}

/** A point of the crop's normalised coordinates (the model's output) in image pixels. */
export function cropToPixels(
  c: CropRegion,
  y: number,
  x: number,
  height: number,
  width: number,
): [number, number] {
  return [(c.xMin + x * (c.xMax - c.xMin)) * width, (c.yMin + y * (c.yMax - c.yMin)) * height];
}
