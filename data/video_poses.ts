// One video's people as a skeleton sequence: frames decoded (data/video.ts), poses estimated
// (data/pose/), people followed (data/tracking.ts), the most present kept. Keypoints are image
// pixels with their scores in the coco17 layout; frame t is at start + t / fps seconds.
import type { PoseEstimator } from "./pose/estimator.ts";
import { DataError } from "./schema.ts";
import { Tracker } from "./tracking.ts";
import { type DecodeOptions, decodeVideo, type VideoInfo } from "./video.ts";

export interface VideoPoseOptions extends DecodeOptions {
  /** people kept: the most present tracks */
  maxPersons: number;
  /** seconds a person may go unseen and keep their track (default 1) */
  maxGapSeconds?: number;
}

/** A video's poses: persons x frames x 17 x 2 pixels, persons x frames x 17 scores. */
export interface VideoPoses {
  info: VideoInfo;
  /** the rate of the frames below (the video's own, or the resampled one) */
  fps: number;
  /** seconds of the first frame */
  start: number;
  frames: number;
  persons: number;
  /** people tracked in the whole video, before keeping the most present */
  tracks: number;
  keypoint: Float32Array;
  score: Float32Array;
}

/**
 * A stream's items with the next one already asked for: FFmpeg decodes frame t + 1 while the
 * pose model looks at frame t.
 */
export async function* readAhead<T>(items: AsyncGenerator<T>): AsyncGenerator<T> {
  // each read is marked handled as it starts: one that fails while the model waits on its worker
  // (data/pose/worker.ts) would otherwise be an unhandled rejection; `await next` still throws it
  const ask = () => {
    const p = items.next();
    p.catch(() => {});
    return p;
  };
  let next = ask();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = ask();
      yield r.value;
    }
  } finally {
    // stopped early: end the source (its pending read settles first; its error is not ours)
    await next.catch(() => {});
    await items.return(undefined);
  }
}

/**
 * Decodes a probed video (probeVideo) and estimates, tracks and keeps its people (the video is
 * never whole in memory).
 */
export async function videoPoses(
  info: VideoInfo,
  estimator: PoseEstimator,
  o: VideoPoseOptions,
): Promise<VideoPoses> {
  const fps = o.fps ?? info.fps, start = o.start ?? 0;
  const tracker = new Tracker({ maxGap: Math.round((o.maxGapSeconds ?? 1) * fps) });
  estimator.reset();
  for await (const frame of readAhead(decodeVideo(info, o))) {
    tracker.add(await estimator.estimate(frame));
  }
  const kept = tracker.arrays(o.maxPersons);
  if (kept.persons === 0) {
    throw new DataError(info.path, null, `no person found in its ${tracker.frames} frames`);
  }
  return { info, fps, start, frames: tracker.frames, tracks: tracker.count, ...kept };
}

/** Frame t's time in seconds. */
export const frameTime = (v: { start: number; fps: number }, t: number) => v.start + t / v.fps;
