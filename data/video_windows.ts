// A video's tracked poses in windows of `window` seconds every `stride` seconds, each given as soon
// as its last frame is tracked, so that a live stream's windows come while it plays: frames
// decoded (data/video.ts, data/video_live.ts), poses estimated (data/pose/), people followed
// (data/tracking.ts), each window's most present people kept. Windows lie whole inside the
// video; one shorter than a window is one window. Poses older than the next window are
// forgotten: a stream of any length holds at most a window's (or a stride's) frames of poses.
import type { PoseEstimator } from "./pose/estimator.ts";
import { Tracker } from "./tracking.ts";
import type { Frame } from "./video.ts";
import { readAhead } from "./video_poses.ts";

/** A window's frames [from, to) and its time range in seconds. */
export interface VideoWindow {
  from: number;
  to: number;
  start: number;
  end: number;
}

/** A window's people: persons x (to - from) x 17 x 2 pixels and x 17 scores (0 unseen). */
export interface PoseWindow extends VideoWindow {
  persons: number;
  keypoint: Float32Array;
  score: Float32Array;
}

export interface WindowOptions {
  /** the frames' rate */
  fps: number;
  /** seconds of the first frame */
  start: number;
  /** seconds per window */
  window: number;
  /** seconds between windows' starts */
  stride: number;
  /** people kept per window: its most present tracks */
  maxPersons: number;
  /** seconds a person may go unseen and keep their track (default 1) */
  maxGapSeconds?: number;
}

/**
 * The first frame of the window whose last frame is the n-th (windows of `len` frames starting
 * every `step`), or null where no window ends there.
 */
export function windowEndingAt(n: number, len: number, step: number): number | null {
  const from = n - len;
  return from >= 0 && from % step === 0 ? from : null;
}

/** The tracked poses of each window as soon as its last frame is tracked. */
export async function* poseWindows(
  frames: AsyncGenerator<Frame>,
  estimator: PoseEstimator,
  o: WindowOptions,
): AsyncGenerator<PoseWindow> {
  const len = Math.max(1, Math.round(o.window * o.fps));
  const step = Math.max(1, Math.round(o.stride * o.fps));
  const tracker = new Tracker({ maxGap: Math.round((o.maxGapSeconds ?? 1) * o.fps) });
  const window = (from: number, to: number): PoseWindow => ({
    from,
    to,
    start: o.start + from / o.fps,
    end: o.start + to / o.fps,
    ...tracker.arrays(o.maxPersons, from, to),
  });
  estimator.reset();
  let given = 0;
  for await (const frame of readAhead(frames)) {
    tracker.add(await estimator.estimate(frame));
    const from = windowEndingAt(tracker.frames, len, step);
    if (from === null) continue;
    yield window(from, tracker.frames);
    given++;
    tracker.forget(from + step);
  }
  if (given === 0 && tracker.frames > 0) yield window(0, tracker.frames);
}
