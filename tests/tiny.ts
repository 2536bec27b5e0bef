// The tiny runs the training tests share: a few synthetic subjects, 8 frames of 16 x 16,
// batches of 8 (one set of compiled shapes for train_test.ts and resume_test.ts).
import { synthMeta, synthRecords } from "../data/importers/synth.ts";
import { writeSkeletonArrow } from "../data/schema.ts";
import { DEFAULT_RUN, type RunConfig, validateConfig } from "../training/config.ts";

export async function tinyData(dir: string, subjects = 3): Promise<string> {
  const path = `${dir}/tiny.arrow`;
  await writeSkeletonArrow(
    path,
    synthMeta(),
    synthRecords({ seed: 3, subjects, trainSubjects: subjects - 1, repetitions: 1 }),
  );
  return path;
}

export const tiny = (data: string, out: string, o: Partial<RunConfig> = {}): RunConfig =>
  validateConfig({
    ...DEFAULT_RUN,
    data,
    out,
    split: "synth",
    clipLen: 8,
    size: 16,
    batchSize: 8,
    epochs: 2,
    warmupEpochs: 0,
    ...o,
  });

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
