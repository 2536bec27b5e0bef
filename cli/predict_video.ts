// `heatformer predict RUN clip.mp4 [--window 2s --stride 1s]`: a video's poses (cli/poses.ts's
// estimator and tracking), cut into windows, each window one sample of a temporary coco17 Arrow
// file that cli/predict.ts then runs through the run's own input pipeline and test protocol.
import { basename } from "node:path";
import type { PoseEstimator } from "../data/pose/estimator.ts";
import { type SkeletonRecord, writeSkeletonArrow } from "../data/schema.ts";
import { type VideoPoses, videoPoses } from "../data/video_poses.ts";
import { probeVideo } from "../data/video.ts";
import { poseEstimator, type PoseFlags, poseOptions } from "./poses.ts";
import { UsageError } from "./output.ts";

export interface VideoFlags extends PoseFlags {
  window: string;
  stride: string;
}

/** A window's frames [from, to) and its time range in seconds. */
export interface VideoWindow {
  from: number;
  to: number;
  start: number;
  end: number;
}

/** `2s`, `2`, `500ms` as seconds > 0. */
function duration(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?|\.\d+)(ms|s)?$/.exec(v.trim());
  const n = m ? Number(m[1]) / (m[2] === "ms" ? 1000 : 1) : NaN;
  if (!(n > 0)) throw new UsageError(`${flag}: a duration such as 2s or 500ms, got "${v}"`);
  return n;
}

/**
 * Windows of `window` seconds every `stride` seconds over `frames` frames at `fps`, each whole
 * inside the video; a video shorter than one window is one window.
 */
export function videoWindows(
  frames: number,
  fps: number,
  start: number,
  window: number,
  stride: number,
): VideoWindow[] {
  const len = Math.max(1, Math.round(window * fps)), step = Math.max(1, Math.round(stride * fps));
  const out: VideoWindow[] = [];
  for (let from = 0; from === 0 || from + len <= frames; from += step) {
    const to = Math.min(from + len, frames);
    out.push({ from, to, start: start + from / fps, end: start + to / fps });
    if (to === frames) break;
  }
  return out;
}

/** One window of a video's poses as a sample: the people seen in it (at least one). */
function windowRecord(v: VideoPoses, w: VideoWindow, name: string): SkeletonRecord {
  const V = 17, T = w.to - w.from;
  const seen = [...Array(v.persons).keys()].filter((m) =>
    v.score.subarray((m * v.frames + w.from) * V, (m * v.frames + w.to) * V).some((s) => s > 0)
  );
  const persons = seen.length ? seen : [0];
  const keypoint = new Float32Array(persons.length * T * V * 2);
  const score = new Float32Array(persons.length * T * V);
  persons.forEach((m, i) => {
    const at = m * v.frames + w.from;
    keypoint.set(v.keypoint.subarray(at * V * 2, (at + T) * V * 2), i * T * V * 2);
    score.set(v.score.subarray(at * V, (at + T) * V), i * T * V);
  });
  return {
    name,
    label: 0,
    ...{ subject: 0, camera: 0, setup: 0, replication: 0 },
    frames: T,
    persons: persons.length,
    keypoint,
    score,
    keypoint2d: null,
    imgShape: [v.info.height, v.info.width],
    splits: ["predict"],
  };
}

/** The videos of one predict command: one estimator, loaded for the first video. */
export class VideoInputs {
  #estimator: PoseEstimator | null = null;
  readonly window: number;
  readonly stride: number;

  constructor(private o: VideoFlags, private quiet: boolean) {
    poseOptions(o);
    this.window = duration("--window", o.window);
    this.stride = duration("--stride", o.stride);
  }

  /** A video's windows as an Arrow file in `dir`, with each window's time range by name. */
  async asArrow(input: string, classes: string[], dir: string) {
    const info = await probeVideo(input);
    this.#estimator ??= await poseEstimator(this.o, this.quiet);
    const v = await videoPoses(info, this.#estimator, poseOptions(this.o));
    const windows = videoWindows(v.frames, v.fps, v.start, this.window, this.stride);
    const times = new Map<string, { start: number; end: number }>();
    const records = windows.map((w) => {
      const name = `${basename(input)}@${w.start.toFixed(2)}-${w.end.toFixed(2)}s`;
      times.set(name, { start: w.start, end: w.end });
      return windowRecord(v, w, name);
    });
    const path = `${dir}/${basename(input)}.arrow`;
    const meta = {
      dataset: "predict",
      layout: "coco17",
      channels: 2 as const,
      classes,
      keypointDtype: "f32" as const,
      batchSize: 64,
    };
    await writeSkeletonArrow(path, meta, records, input);
    return { path, times };
  }

  dispose(): void {
    this.#estimator?.dispose();
  }
}
