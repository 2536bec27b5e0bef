// MoveNet: the single-person models (Lightning 192 x 192, Thunder 256 x 256) with the crop that
// follows the person (data/pose/crop.ts), and MultiPose (up to 6 people, the frame scaled to at
// most 512 on its longer side). The crops are made here and run through TF.js in the pose worker
// (data/pose/worker.ts); outputs are (y, x, score) normalised to the input, mapped back to image
// pixels.
import type { Frame } from "../video.ts";
import {
  type CropRegion,
  cropResize,
  cropToPixels,
  determineCropRegion,
  initCropRegion,
} from "./crop.ts";
import { COCO17_JOINTS, keypointBox, type Pose, type PoseEstimator } from "./estimator.ts";
import { type MoveNetModel, moveNetModel } from "./model_files.ts";
import { PoseWorker } from "./worker.ts";
import type { TfBackend } from "./worker_protocol.ts";

const INPUT_SIZE: Record<MoveNetModel, number> = { lightning: 192, thunder: 256, multipose: 512 };
/**
 * MultiPose's people below this score are dropped: 0.15, under tfjs-models' default 0.25, which
 * on vtest.avi's first 20 s (people 60 pixels tall in the model's input) kept 65% of the person
 * frames counted by hand where 0.15 keeps 85%, the detections added being people too (docs/video.md).
 */
const MIN_POSE_SCORE = 0.15;

/** 17 (y, x, score) rows of a crop's normalised coordinates as a Pose in pixels. */
function poseOf(out: Float32Array, at: number, c: CropRegion, frame: Frame): Pose {
  const xy = new Float32Array(2 * COCO17_JOINTS), scores = new Float32Array(COCO17_JOINTS);
  for (let j = 0; j < COCO17_JOINTS; j++) {
    const [x, y] = cropToPixels(c, out[at + 3 * j], out[at + 3 * j + 1], frame.height, frame.width);
    xy[2 * j] = x, xy[2 * j + 1] = y, scores[j] = out[at + 3 * j + 2];
  }
  const score = scores.reduce((a, b) => a + b, 0) / COCO17_JOINTS;
  return { xy, scores, score, box: keypointBox(xy, scores) };
}

/** Lightning or Thunder: one person, followed from frame to frame by the crop. */
class SinglePose implements PoseEstimator {
  #crop: CropRegion | null = null;
  constructor(readonly name: string, private worker: PoseWorker, private size: number) {}

  get backend(): string {
    return this.worker.backend;
  }

  async #run(frame: Frame, crop: CropRegion): Promise<Pose> {
    const out = await this.worker.infer(cropResize(frame, crop, this.size), this.size);
    return poseOf(out, 0, crop, frame);
  }

  /**
   * A video's first frame is seen whole, then once more through the crop its pose gives (a
   * one-frame video is a picture); later frames through the previous frame's crop.
   */
  async estimate(frame: Frame): Promise<Pose[]> {
    const first = this.#crop === null;
    let pose = await this.#run(frame, this.#crop ?? initCropRegion(frame.height, frame.width));
    const next = () => determineCropRegion(pose.xy, pose.scores, frame.height, frame.width);
    if (first) pose = await this.#run(frame, next());
    this.#crop = next();
    return [pose];
  }

  reset(): void {
    this.#crop = null;
  }
  dispose(): void {
    this.worker.dispose();
  }
}

/**
 * The input MultiPose sees: the frame scaled so its longer side is at most `side`, padded at the
 * bottom and right to multiples of 32 (the model takes any such size).
 */
export function multiPoseInput(frame: Frame, side: number) {
  const scale = Math.min(1, side / Math.max(frame.width, frame.height));
  const rows = Math.ceil(frame.height * scale / 32) * 32;
  const cols = Math.ceil(frame.width * scale / 32) * 32;
  const crop = {
    yMin: 0,
    xMin: 0,
    yMax: rows / (frame.height * scale),
    xMax: cols / (frame.width * scale),
  };
  return { rows, cols, crop };
}

/** MultiPose: up to 6 people with their boxes. */
class MultiPose implements PoseEstimator {
  readonly name = "movenet-multipose";
  constructor(private worker: PoseWorker) {}

  get backend(): string {
    return this.worker.backend;
  }

  async estimate(frame: Frame): Promise<Pose[]> {
    const { rows, cols, crop: c } = multiPoseInput(frame, INPUT_SIZE.multipose);
    const out = await this.worker.infer(cropResize(frame, c, rows, cols), rows, cols);
    const poses: Pose[] = [];
    for (let p = 0; p < out.length / 56; p++) {
      const at = p * 56, score = out[at + 55];
      if (score < MIN_POSE_SCORE) continue;
      const pose = poseOf(out, at, c, frame);
      const [x1, y1] = cropToPixels(c, out[at + 51], out[at + 52], frame.height, frame.width);
      const [x2, y2] = cropToPixels(c, out[at + 53], out[at + 54], frame.height, frame.width);
      poses.push({ ...pose, score, box: [x1, y1, x2, y2] });
    }
    return poses;
  }

  reset(): void {}
  dispose(): void {
    this.worker.dispose();
  }
}

/**
 * A MoveNet model on a TF.js backend (`auto`: the fastest here) in the pose worker, its files
 * fetched first if needed.
 */
export async function createMoveNet(
  model: MoveNetModel,
  backend: TfBackend | "auto",
  log: (line: string) => void,
): Promise<PoseEstimator> {
  const worker = await PoseWorker.start({ model: await moveNetModel(model, log), backend });
  if (model === "multipose") return new MultiPose(worker);
  return new SinglePose(`movenet-${model}`, worker, INPUT_SIZE[model]);
}
