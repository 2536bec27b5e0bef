// What the video tests share: opencv-doc's sample files, the reasons a test is skipped (FFmpeg,
// the samples or MoveNet's files missing), a test with a temporary folder, and a small coco17 run
// trained once per test file for `predict` to use.
import { join } from "node:path";
import { cachedModel } from "../data/pose/model_files.ts";
import { writeSkeletonArrow } from "../data/schema.ts";
import { assertEquals } from "./assert.ts";
import { cli } from "./cli.ts";

export const DATA = "/usr/share/doc/opencv-doc/examples/data";
export const VTEST = `${DATA}/vtest.avi`, MESSI = `${DATA}/messi5.jpg`;

export const exists = (p: string) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
};
const ffmpeg = () => {
  try {
    return new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
};

export const NO_FFMPEG = ffmpeg() ? "" : "ffmpeg is not installed (apt-get install ffmpeg)";
export const NO_SAMPLES = exists(VTEST) && exists(MESSI)
  ? ""
  : `${DATA} has no vtest.avi / messi5.jpg (apt-get install opencv-doc)`;
export const NO_MODELS = (await cachedModel("lightning")) && (await cachedModel("multipose"))
  ? ""
  : "MoveNet is not in heatformer's cache (run `heatformer poses` on any video once)";

/**
 * Deno.test with a temporary folder (removed afterwards), ignored with the first reason given
 * (printed) where one is non-empty.
 */
export function videoTest(name: string, reasons: string[], fn: (dir: string) => Promise<void>) {
  const skip = reasons.find((r) => r);
  if (skip) console.log(`skipping "${name}": ${skip}`);
  Deno.test({
    name,
    ignore: !!skip,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "heatformer-video-" });
      try {
        await fn(dir);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/** Eight made-up coco17 sequences of two classes, six to train, two to validate. */
export async function writeCoco17(path: string): Promise<void> {
  const T = 10, V = 17;
  const records = [...Array(8).keys()].map((i) => ({
    name: `s${i}`,
    label: i % 2,
    ...{ subject: 0, camera: 0, setup: 0, replication: 0 },
    frames: T,
    persons: 1,
    keypoint: new Float32Array(T * V * 2).map((_, j) => 100 + ((j * 37 + i * 11) % 300)),
    score: new Float32Array(T * V).fill(0.9),
    keypoint2d: null,
    imgShape: [576, 768] as [number, number],
    splits: [i < 6 ? "train" : "val"],
  }));
  const meta = {
    dataset: "made-up",
    layout: "coco17",
    channels: 2 as const,
    classes: ["a", "b"],
    keypointDtype: "f32" as const,
    batchSize: 64,
  };
  await writeSkeletonArrow(path, meta, records);
}

/** A coco17 run of classes a and b (one epoch of made-up data) in `dir`/run. */
export async function coco17Run(dir: string): Promise<string> {
  const data = join(dir, "coco17.arrow"), run = join(dir, "run");
  await writeCoco17(data);
  const trained = await cli(
    ...["train", "--data", data, "--split", "train:val", "--clip-len", "8", "--size", "16"],
    ...["--batch-size", "2", "--test-clips", "1", "--no-flip-test", "--epochs", "1"],
    ...["--out", run, "--json"],
  );
  assertEquals(trained.code, 0, trained.stderr);
  return run;
}
