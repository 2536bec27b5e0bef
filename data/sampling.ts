// Which frames a clip takes: pyskl's UniformSampleFrames (PoseConv3D) or MotionBERT's
// resample, one random clip in training or a fixed-seed set of clips at test time.
import { Rng } from "../layers/init.ts";

/** pyskl's UniformSampleFrames for one clip (train) or clip i of a fixed-seed test set. */
export function sampleClip(
  numFrames: number,
  clipLen: number,
  rng: Rng,
  test = false,
  clip = 0,
  clips = 1,
): number[] {
  const n = numFrames;
  let inds: number[];
  if (n < clipLen) {
    const start = test ? (n < clips ? clip : Math.floor((clip * n) / clips)) : rng.int(n);
    inds = Array.from({ length: clipLen }, (_, i) => start + i);
  } else if (n < 2 * clipLen) {
    // clipLen distinct frames in order, the surplus (n - clipLen) skipped at random positions
    const extra = n - clipLen;
    const chosen = new Set<number>();
    while (chosen.size < extra) chosen.add(rng.int(clipLen + 1));
    let offset = 0;
    inds = [];
    for (let i = 0; i < clipLen; i++) {
      if (chosen.has(i)) offset++;
      inds.push(i + offset);
    }
  } else {
    // clipLen equal segments, one frame in each (the middle for the first test clip)
    inds = [];
    for (let i = 0; i < clipLen; i++) {
      const b0 = Math.floor((i * n) / clipLen), b1 = Math.floor(((i + 1) * n) / clipLen);
      const size = Math.max(1, b1 - b0);
      inds.push(b0 + (test && clip === 0 ? Math.floor(size / 2) : rng.int(size)));
    }
  }
  return inds.map((i) => ((i % n) + n) % n);
}

/**
 * MotionBERT's resample: clipLen points on an even grid over the whole sequence
 * (i * n / clipLen); in training each moves within its cell (sequences longer than the clip)
 * or goes to the floor or the ceiling at random (shorter ones), then truncates to a frame.
 * Test clip c of `clips` shifts the grid by c / clips of a cell (clip 0 is the reference's).
 */
export function resampleClip(
  numFrames: number,
  clipLen: number,
  rng: Rng,
  test = false,
  clip = 0,
  clips = 1,
): number[] {
  const n = numFrames, cell = n / clipLen;
  const inds = Array.from({ length: clipLen }, (_, i) => {
    const even = i * cell;
    if (test) return Math.floor(even + (clip / clips) * cell);
    if (n < clipLen) return rng.uniform() < 0.5 ? Math.floor(even) : Math.ceil(even);
    return Math.floor(even + rng.uniform() * cell);
  });
  if (!test && n < clipLen) inds.sort((a, b) => a - b);
  return inds.map((i) => Math.min(n - 1, Math.max(0, i)));
}

/** How a clip's frames are chosen: pyskl's UniformSampleFrames or MotionBERT's resample. */
export type Sampling = "uniform" | "resample";
const SAMPLERS: Record<Sampling, typeof sampleClip> = {
  uniform: sampleClip,
  resample: resampleClip,
};

/** Frame indices of every clip: one random clip (train) or `clips` fixed-seed clips (test). */
export function sampleFrames(
  numFrames: number,
  clipLen: number,
  clips: number,
  rng: Rng,
  test: boolean,
  sampling: Sampling = "uniform",
): number[][] {
  const sample = SAMPLERS[sampling];
  if (!test) return [sample(numFrames, clipLen, rng)];
  const fixed = new Rng(255); // pyskl's fixed test seed (resample's test clips draw nothing)
  return Array.from(
    { length: clips },
    (_, c) => sample(numFrames, clipLen, fixed, true, c, clips),
  );
}
