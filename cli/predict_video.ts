// `heatformer predict RUN clip.mp4 [--window 2s --stride 1s]`, and live inputs: `--input-format
// v4l2 /dev/video0`, `--input-format lavfi testsrc`, a URL, `-` (stdin), a named pipe. A video's
// poses (cli/poses.ts's estimator) in windows (data/video_windows.ts), each window, as soon as its
// last frame is tracked, a one-sample coco17 Arrow file that cli/predict.ts runs through the run's
// own input pipeline and test protocol and prints: a live stream's predictions come while it plays.
import { basename } from "node:path";
import type { PoseEstimator } from "../data/pose/estimator.ts";
import { type SkeletonRecord, writeSkeletonArrow } from "../data/schema.ts";
import { isVideoFile } from "../data/video_folders.ts";
import { isLiveInput, type LiveVideo, openLive } from "../data/video_live.ts";
import { type PoseWindow, poseWindows } from "../data/video_windows.ts";
import { decodeVideo, probeVideo } from "../data/video.ts";
import { poseEstimator, type PoseFlags, poseOptions } from "./poses.ts";
import { UsageError } from "./output.ts";

export interface VideoFlags extends PoseFlags {
  window: string;
  stride: string;
  /** FFmpeg's input format (`-f`): every input is then an FFmpeg input */
  inputFormat?: string;
}

/** A window of a video ready to predict: a one-sample Arrow file. */
export interface WindowFile {
  path: string;
  name: string;
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

/** One window's people as a sample (one person of score 0 where nobody was seen). */
function windowRecord(w: PoseWindow, name: string, imgShape: [number, number]): SkeletonRecord {
  const T = w.to - w.from, persons = Math.max(1, w.persons);
  return {
    name,
    label: 0,
    ...{ subject: 0, camera: 0, setup: 0, replication: 0 },
    frames: T,
    persons,
    keypoint: w.persons ? w.keypoint : new Float32Array(T * 17 * 2),
    score: w.persons ? w.score : new Float32Array(T * 17),
    keypoint2d: null,
    imgShape,
    splits: ["predict"],
  };
}

/** The videos of one predict command: one estimator, loaded for the first video. */
export class VideoInputs {
  #estimator: PoseEstimator | null = null;
  readonly window: number;
  readonly stride: number;
  /** Whether Ctrl-C (SIGINT) ended a video, its windows until then predicted. */
  interrupted = false;

  constructor(private o: VideoFlags, private quiet: boolean) {
    poseOptions(o);
    this.window = duration("--window", o.window);
    this.stride = duration("--stride", o.stride);
  }

  /** Whether an input is a video: any with --input-format, a live one, a video file. */
  async isVideo(input: string): Promise<boolean> {
    return !!this.o.inputFormat || isVideoFile(input) || await isLiveInput(input);
  }

  /** A video file probed, else a live FFmpeg input opened (either refused naming it). */
  async #open(input: string): Promise<LiveVideo> {
    const opts = poseOptions(this.o);
    if (this.o.inputFormat || await isLiveInput(input)) {
      return await openLive({ input, format: this.o.inputFormat }, opts);
    }
    const probed = await probeVideo(input);
    // the frames' rate: --fps, else the video's own
    const info = { ...probed, fps: opts.fps ?? probed.fps };
    return { info, frames: decodeVideo(info, opts), stop: () => {} };
  }

  /**
   * A video's windows as each completes, each a one-sample Arrow file in `dir`. Ctrl-C ends the
   * video (a camera's stream has no other end; the error its stopped decoder or pose worker then
   * gives is no error), a second one quits at once.
   */
  async *windows(input: string, classes: string[], dir: string): AsyncGenerator<WindowFile> {
    const video = await this.#open(input), { info } = video;
    const interrupt = () => {
      if (this.interrupted) Deno.exit(130);
      this.interrupted = true;
      video.stop();
    };
    Deno.addSignalListener("SIGINT", interrupt);
    const { start, maxPersons } = poseOptions(this.o);
    const meta = {
      dataset: "predict",
      layout: "coco17",
      channels: 2 as const,
      classes,
      keypointDtype: "f32" as const,
      batchSize: 64,
    };
    try {
      // loaded once the first video is open (a bad input fails without it)
      this.#estimator ??= await poseEstimator(this.o, this.quiet);
      const windows = poseWindows(video.frames, this.#estimator, {
        ...{ fps: info.fps, start: start ?? 0, maxPersons },
        ...{ window: this.window, stride: this.stride },
      });
      for await (const w of windows) {
        const name = `${basename(info.path)}@${w.start.toFixed(2)}-${w.end.toFixed(2)}s`;
        const path = `${dir}/window.arrow`;
        const record = windowRecord(w, name, [info.height, info.width]);
        await writeSkeletonArrow(path, meta, [record], input);
        yield { path, name, start: w.start, end: w.end };
      }
    } catch (e) {
      if (!this.interrupted) throw e;
    } finally {
      Deno.removeSignalListener("SIGINT", interrupt);
      video.stop();
    }
  }

  dispose(): void {
    this.#estimator?.dispose();
  }
}
