// `heatformer bench data`'s video part: frames per second end to end (FFmpeg decoding, MoveNet in
// the pose worker, tracking: data/video_poses.ts, what `heatformer poses` runs) for each MoveNet
// model on a video, after a few warm-up frames (TF.js compiles its kernels on the first).
import { createMoveNet } from "../data/pose/movenet.ts";
import { MOVENET_MODELS, type MoveNetModel } from "../data/pose/model_files.ts";
import type { TfBackend } from "../data/pose/worker_protocol.ts";
import { videoPoses } from "../data/video_poses.ts";
import { probeVideo } from "../data/video.ts";

/** The default video: Debian's opencv-doc pedestrians (768 x 576, 10 frames/s, 79.5 s). */
export const SAMPLE_VIDEO = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

export interface PoseBenchRow {
  model: MoveNetModel;
  backend: string;
  frames: number;
  framesPerSec: number;
  /** people tracked over the timed frames */
  tracks: number;
}

export interface PoseBenchOptions {
  video: string;
  /** frames timed per model, at the video's own rate from its start */
  frames: number;
  /** frames run first, untimed */
  warmup?: number;
  backend?: TfBackend | "auto";
  models?: readonly MoveNetModel[];
  log?: (line: string) => void;
}

/** Each model's end-to-end frames per second on the video's first `frames` frames. */
export async function benchPoses(o: PoseBenchOptions): Promise<PoseBenchRow[]> {
  const log = o.log ?? (() => {});
  const info = await probeVideo(o.video), warmup = o.warmup ?? 3;
  const rows: PoseBenchRow[] = [];
  for (const model of o.models ?? MOVENET_MODELS) {
    const est = await createMoveNet(model, o.backend ?? "auto", log);
    try {
      await videoPoses(info, est, { maxPersons: 6, end: warmup / info.fps });
      const t0 = performance.now();
      const v = await videoPoses(info, est, { maxPersons: 6, end: o.frames / info.fps });
      const framesPerSec = v.frames / ((performance.now() - t0) / 1000);
      rows.push({ model, backend: est.backend, frames: v.frames, framesPerSec, tracks: v.tracks });
      log(
        `poses ${model} on TF.js ${est.backend}: ${framesPerSec.toFixed(1)} frames/s end to end ` +
          `(decode + pose + track, ${v.frames} frames of ${info.width} x ${info.height})`,
      );
    } finally {
      est.dispose();
    }
  }
  return rows;
}
