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

/**
 * The crop resized to rows x cols by bilinear sampling, 0 outside the image, as int32 RGB
 * (MoveNet's input), with tf.image.cropAndResize's sample positions:
 * y = yMin (H - 1) + i (yMax - yMin) (H - 1) / (rows - 1).
 */
export function cropResize(frame: Frame, c: CropRegion, rows: number, cols = rows): Int32Array {
  const { width: W, height: H, rgb } = frame;
  const out = new Int32Array(rows * cols * 3);
  const step = (a: number, b: number, n: number, m: number) =>
    m > 1 ? (b - a) * (n - 1) / (m - 1) : 0;
  const sy = step(c.yMin, c.yMax, H, rows), sx = step(c.xMin, c.xMax, W, cols);
  for (let i = 0; i < rows; i++) {
    const y = c.yMin * (H - 1) + i * sy;
    if (y < 0 || y > H - 1) continue;
    const y0 = Math.floor(y), y1 = Math.min(y0 + 1, H - 1), fy = y - y0;
    for (let j = 0; j < cols; j++) {
      const x = c.xMin * (W - 1) + j * sx;
      if (x < 0 || x > W - 1) continue;
      const x0 = Math.floor(x), x1 = Math.min(x0 + 1, W - 1), fx = x - x0;
      for (let ch = 0; ch < 3; ch++) {
        const at = (yy: number, xx: number) => rgb[(yy * W + xx) * 3 + ch];
        const top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * fx;
        const bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * fx;
        // int32 as tf.cast truncates
        out[(i * cols + j) * 3 + ch] = Math.trunc(top + (bottom - top) * fy);
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
