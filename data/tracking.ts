// People followed across a video's frames: each frame's poses are matched to the tracks seen in
// the last `maxGap` frames by box IoU and keypoint similarity (COCO's OKS) with where each track
// is headed (its pose moved on at its last pace), greedily from the most similar pair; an
// unmatched pose starts a track, so an id survives a short occlusion. The
// `maxPersons` most present tracks of a video, or of a window of its frames, are kept as M x T
// arrays, with score 0 (and keypoints 0) in the frames where a track was not seen.
import { COCO17_JOINTS, MIN_KEYPOINT_SCORE, type Pose } from "./pose/estimator.ts";

// COCO's per-keypoint OKS sigmas: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles
const SIGMAS = [26, 25, 25, 35, 35, 79, 79, 72, 72, 62, 62, 107, 107, 87, 87, 89, 89].map((s) =>
  s / 1e3
);

export interface TrackerOptions {
  /** frames a track may go unseen and still be continued (default 10) */
  maxGap?: number;
  /** the least similarity (mean of IoU and OKS) that continues a track (default 0.1) */
  minSimilarity?: number;
}

interface Track {
  id: number;
  last: Pose;
  lastFrame: number;
  /** pixels per frame of the box's centre (null until seen twice) */
  v: [number, number] | null;
  /** frame index -> pose */
  poses: Map<number, Pose>;
}

/** Intersection over union of two [x1, y1, x2, y2] boxes. */
export function boxIou(a: readonly number[], b: readonly number[]): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const area = (r: readonly number[]) => (r[2] - r[0]) * (r[3] - r[1]);
  return (w * h) / (area(a) + area(b) - w * h);
}

/** Object keypoint similarity over the keypoints both poses see, at the first one's scale. */
export function oks(a: Pose, b: Pose): number {
  const area = Math.max(1, (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]));
  let sum = 0, n = 0;
  for (let j = 0; j < COCO17_JOINTS; j++) {
    if (a.scores[j] < MIN_KEYPOINT_SCORE || b.scores[j] < MIN_KEYPOINT_SCORE) continue;
    const dx = a.xy[2 * j] - b.xy[2 * j], dy = a.xy[2 * j + 1] - b.xy[2 * j + 1];
    const k = 2 * SIGMAS[j];
    sum += Math.exp(-(dx * dx + dy * dy) / (2 * area * k * k));
    n++;
  }
  return n ? sum / n : 0;
}

/** How alike a track's last pose and a new one are: the mean of box IoU and OKS. */
export const similarity = (a: Pose, b: Pose) => (boxIou(a.box, b.box) + oks(a, b)) / 2;

/** A pose moved by (dx, dy) pixels. */
function shifted(p: Pose, dx: number, dy: number): Pose {
  const xy = p.xy.map((v, i) => v + (i % 2 ? dy : dx));
  const [x1, y1, x2, y2] = p.box;
  return { ...p, xy, box: [x1 + dx, y1 + dy, x2 + dx, y2 + dy] };
}

const centre = (p: Pose) => [(p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2];

export class Tracker {
  #tracks: Track[] = [];
  #nextId = 0;
  #frames = 0;
  readonly maxGap: number;
  readonly minSimilarity: number;

  constructor(o: TrackerOptions = {}) {
    this.maxGap = o.maxGap ?? 10;
    this.minSimilarity = o.minSimilarity ?? 0.1;
  }

  /** Frames seen so far. */
  get frames(): number {
    return this.#frames;
  }

  /** Tracks started so far (all of them, however short, forgotten ones too). */
  get count(): number {
    return this.#nextId;
  }

  /** Whether a track may still be continued in frame `t`. */
  #live(k: Track, t: number): boolean {
    return t - k.lastFrame <= this.maxGap + 1;
  }

  /** Adds one frame's poses; returns the track id of each. */
  add(poses: Pose[]): number[] {
    const t = this.#frames++;
    const live = this.#tracks.filter((k) => this.#live(k, t));
    const pairs = live.flatMap((k) => {
      const [vx, vy] = k.v ?? [0, 0], dt = t - k.lastFrame;
      const ahead = shifted(k.last, vx * dt, vy * dt);
      return poses.map((p, i) => ({ k, i, s: similarity(ahead, p) }));
    })
      .filter((x) => x.s >= this.minSimilarity)
      .sort((a, b) => b.s - a.s);
    const ids = new Array<number>(poses.length).fill(-1), used = new Set<Track>();
    for (const { k, i } of pairs) {
      if (ids[i] >= 0 || used.has(k)) continue;
      used.add(k), (ids[i] = k.id), this.#extend(k, poses[i], t);
    }
    poses.forEach((p, i) => {
      if (ids[i] >= 0) return;
      const k = {
        id: this.#nextId++,
        last: p,
        lastFrame: t,
        v: null,
        poses: new Map([[t, p]]),
      };
      this.#tracks.push(k), (ids[i] = k.id);
    });
    return ids;
  }

  /** Continues a track with frame t's pose, its velocity the mean of the last and the new. */
  #extend(k: Track, p: Pose, t: number): void {
    const [x0, y0] = centre(k.last), [x1, y1] = centre(p), dt = t - k.lastFrame;
    const v: [number, number] = [(x1 - x0) / dt, (y1 - y0) / dt];
    k.v = k.v ? [(k.v[0] + v[0]) / 2, (k.v[1] + v[1]) / 2] : v;
    k.last = p, (k.lastFrame = t), k.poses.set(t, p);
  }

  /**
   * Drops the poses of the frames before `frame` (a stream's windows have no more use for them),
   * and the tracks left with none that can no longer be continued.
   */
  forget(frame: number): void {
    for (const k of this.#tracks) {
      for (const t of k.poses.keys()) {
        if (t >= frame) break; // a track's frames are in order
        k.poses.delete(t);
      }
    }
    this.#tracks = this.#tracks.filter((k) => k.poses.size > 0 || this.#live(k, this.#frames));
  }

  /**
   * The `maxPersons` tracks most present in frames [from, to) (frames seen, then mean score) as
   * M x T x 17 x 2 keypoints and M x T x 17 scores (T = to - from, M = min(maxPersons, tracks
   * seen there)), 0 where a track is unseen.
   */
  arrays(
    maxPersons: number,
    from = 0,
    to = this.#frames,
  ): { persons: number; keypoint: Float32Array; score: Float32Array } {
    const seen = this.#tracks.map((k) => ({
      k,
      poses: [...k.poses].filter(([t]) => t >= from && t < to),
    })).filter((x) => x.poses.length > 0);
    const meanScore = (ps: [number, Pose][]) => ps.reduce((a, [, p]) => a + p.score, 0) / ps.length;
    const keep = seen
      .sort((a, b) => b.poses.length - a.poses.length || meanScore(b.poses) - meanScore(a.poses))
      .slice(0, maxPersons);
    const T = to - from, V = COCO17_JOINTS;
    const keypoint = new Float32Array(keep.length * T * V * 2);
    const score = new Float32Array(keep.length * T * V);
    keep.forEach(({ poses }, m) => {
      for (const [t, p] of poses) {
        keypoint.set(p.xy, (m * T + t - from) * V * 2);
        score.set(p.scores, (m * T + t - from) * V);
      }
    });
    return { persons: keep.length, keypoint, score };
  }
}
