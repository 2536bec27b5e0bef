// The tiny runs the training tests share: a few synthetic subjects, 8 frames of 16 x 16,
// batches of 8 (one set of compiled shapes for train_test.ts and resume_test.ts).
import { synthMeta, synthRecords } from "../data/importers/synth.ts";
import { writeSkeletonArrow } from "../data/schema.ts";
import { type Layer, type RunExperiment, withRunFolder } from "../training/experiment.ts";
import { resolveExperiment } from "../training/resolve.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { gpuTest } from "./helpers.ts";

export async function tinyData(dir: string, subjects = 3): Promise<string> {
  const path = `${dir}/tiny.arrow`;
  await writeSkeletonArrow(
    path,
    synthMeta(),
    synthRecords({ seed: 3, subjects, trainSubjects: subjects - 1, repetitions: 1 }),
  );
  return path;
}

/** The tiny run's layer. */
const TINY_LAYER = (data: string, out: string): Layer => ({
  data: { path: data, split: "synth" },
  input: { clipLen: 8, size: 16 },
  optim: { batchSize: 8 },
  schedule: { warmupEpochs: 0 },
  eval: { clips: 1, flip: false },
  run: { epochs: 2, out },
});

/** A tiny run of vanilla-tiny, `o` layered over it. */
export const tiny = (data: string, out: string, o: Layer = {}): RunExperiment =>
  withRunFolder(
    resolveExperiment([
      { origin: "test", layer: TINY_LAYER(data, out) },
      { origin: "test", layer: o },
    ]).experiment,
  );

/** What a tiny test gets: a temporary folder, the tiny data in it, a run folder's path. */
export interface TinyFolder {
  dir: string;
  data: string;
  run: string;
}

/** A GPU test with a temporary folder holding the tiny data, removed afterwards. */
export function tinyTest(name: string, fn: (rt: Runtime, t: TinyFolder) => Promise<void>): void {
  gpuTest(name, async (rt) => {
    const dir = await Deno.makeTempDir();
    try {
      await fn(rt, { dir, data: await tinyData(dir), run: `${dir}/run` });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}

/** The same run as CLI flags. */
export const TINY = [
  "--clip-len",
  "8",
  "--size",
  "16",
  "--batch-size",
  "8",
  "--split",
  "synth",
  "--test-clips",
  "1",
  "--no-flip-test",
];
