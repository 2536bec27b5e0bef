// What a 2D pose estimator gives for a frame: people, each 17 COCO keypoints in image pixels
// with a score per keypoint (the coco17 layout, as pyskl's Penn Action poses). MoveNet
// (data/pose/movenet.ts) is the one built in; tests and other models implement the same
// interface.
import type { Frame } from "../video.ts";

export const COCO17_JOINTS = 17;

/** One person in one frame. */
export interface Pose {
  /** 17 x (x, y), image pixels */
  xy: Float32Array;
  /** 17 keypoint scores in [0, 1] */
  scores: Float32Array;
  /** the person's score: the model's, else the mean of its keypoint scores */
  score: number;
  /** [x1, y1, x2, y2] pixels: the model's box, else that of the confident keypoints */
  box: [number, number, number, number];
}

export interface PoseEstimator {
  /** e.g. "movenet-lightning" */
  readonly name: string;
  /** where it runs, e.g. "wasm" */
  readonly backend: string;
  /** the people of one frame (frames of one video in order: a model may follow a person) */
  estimate(frame: Frame): Promise<Pose[]>;
  /** forgets what it followed: the next frame starts a new video */
  reset(): void;
  dispose(): void;
}

/** Keypoints this confident count for boxes and similarities. */
export const MIN_KEYPOINT_SCORE = 0.2;

/** The box of the keypoints scoring at least `min` (all of them if none does). */
export function keypointBox(xy: Float32Array, scores: Float32Array, min = MIN_KEYPOINT_SCORE) {
  let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
  const any = scores.some((s) => s >= min);
  for (let j = 0; j < scores.length; j++) {
    if (any && scores[j] < min) continue;
    x1 = Math.min(x1, xy[2 * j]), x2 = Math.max(x2, xy[2 * j]);
    y1 = Math.min(y1, xy[2 * j + 1]), y2 = Math.max(y2, xy[2 * j + 1]);
  }
  return [x1, y1, x2, y2] as [number, number, number, number];
}
