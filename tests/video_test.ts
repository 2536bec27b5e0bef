// From video to poses to predictions: tracking and windows (always), decoding and bad inputs
// (where FFmpeg and opencv-doc's sample files are installed), MoveNet on a picture and on
// pedestrians, `poses` resumed over a folder and `predict` on a video (where MoveNet's files are
// in heatformer's cache). A few frames each: the whole file takes under a minute on 2 cores.
import { join } from "node:path";
import { COCO17, type JointLayout } from "../data/layouts.ts";
import type { Pose, PoseEstimator } from "../data/pose/estimator.ts";
import { SkeletonFile } from "../data/schema.ts";
import { Tracker } from "../data/tracking.ts";
import { decodeVideo, probeVideo } from "../data/video.ts";
import { poseWindows } from "../data/video_windows.ts";
import { assert, assertEquals } from "./assert.ts";
import { cli } from "./cli.ts";
import {
  coco17Run,
  exists,
  MESSI,
  NO_FFMPEG,
  NO_MODELS,
  NO_SAMPLES,
  videoTest,
  VTEST,
} from "./video.ts";

const TFJS_CONFIG = new URL("../data/pose/tfjs/deno.json", import.meta.url).pathname;
const TFJS_CROP = new URL("../data/pose/tfjs/crop_reference.ts", import.meta.url).pathname;

const joint = (l: JointLayout, name: string) => l.joints.indexOf(name);

/** A person 20 x 48 pixels at (x, y): 17 keypoints and their box. */
function pose(x: number, y: number, score = 0.9): Pose {
  const xy = new Float32Array(34).map((_, i) => (i % 2 ? y + (i >> 1) * 3 : x + (i >> 1) % 3 * 10));
  return { xy, scores: new Float32Array(17).fill(score), score, box: [x, y, x + 20, y + 48] };
}

Deno.test("tracking: ids kept through a short occlusion, the most present kept, gaps score 0", () => {
  const tr = new Tracker({ maxGap: 2 });
  // A walks right across 6 frames, hidden in frames 2-3; B appears in frames 4-5 only; C once
  const frames = [
    [pose(10, 10), pose(200, 10)],
    [pose(14, 10)],
    [],
    [pose(300, 300)],
    [pose(26, 10), pose(100, 100)],
    [pose(100, 102), pose(30, 10)],
  ];
  const ids = frames.map((f) => tr.add(f));
  assertEquals(ids[4][0], ids[0][0], "A keeps its id after two unseen frames");
  assertEquals(ids[5][1], ids[0][0], "A matched whatever its order in the frame");
  assertEquals(ids[5][0], ids[4][1], "B keeps its id");
  assertEquals(tr.count, 4);
  const { persons, score, keypoint } = tr.arrays(2);
  assertEquals(persons, 2);
  const seen = (m: number) => [...Array(6).keys()].map((t) => score[(m * 6 + t) * 17] > 0);
  assertEquals(seen(0), [true, true, false, false, true, true], "A first, unseen frames 0");
  assertEquals(seen(1), [false, false, false, false, true, true]);
  assertEquals(keypoint[(0 * 6 + 2) * 34], 0);
});

Deno.test("tracking: a walker keeps their id through a gap wider than their box", () => {
  // 12 pixels a frame, boxes 20 wide: unseen in frames 3-5 (their box moved 48 pixels), found
  // where their pace takes them
  const tr = new Tracker({ maxGap: 3 });
  const ids = [0, 1, 2, 6].map((t) => {
    while (tr.frames < t) tr.add([]);
    return tr.add([pose(10 + 12 * t, 10)])[0];
  });
  assertEquals(ids, [0, 0, 0, 0]);
});

Deno.test("tracking: a window's most present people; poses before a frame forgotten", () => {
  const tr = new Tracker({ maxGap: 1 });
  // A in frames 0-5, B in frames 3-5 only, C in frames 0-1 only
  for (let t = 0; t < 6; t++) {
    tr.add([
      pose(10 + t, 10),
      ...(t >= 3 ? [pose(200, 10)] : []),
      ...(t < 2 ? [pose(400, 300)] : []),
    ]);
  }
  const w = tr.arrays(2, 3, 6);
  assertEquals(w.persons, 2, "A and B are in frames 3-5, C is not");
  assertEquals(w.keypoint[0], 13, "A first, its frame 3 at t = 0");
  assertEquals(w.keypoint.length, 2 * 3 * 34);
  tr.forget(3);
  assertEquals(tr.arrays(5).persons, 2, "C forgotten");
  const all = tr.arrays(5);
  assertEquals([all.score[0], all.score[3 * 17]], [0, Math.fround(0.9)], "frames 0-2 forgotten");
  assertEquals(tr.count, 3);
});

/** `n` frames of 4 x 4 pixels, counting how many were read. */
async function* blankFrames(n: number, read: { count: number }) {
  for (let index = 0; index < n; index++) {
    read.count++;
    yield { index, time: index / 10, width: 4, height: 4, rgb: new Uint8Array(48) };
  }
}

/** An estimator that sees one person walking right. */
const walker: PoseEstimator = {
  name: "walker",
  backend: "none",
  estimate: (f) => Promise.resolve([pose(10 + f.index, 10)]),
  reset: () => {},
  dispose: () => {},
};

Deno.test("pose windows: each given as soon as its last frame is tracked; a short video one", async () => {
  const read = { count: 0 }, o = { fps: 10, start: 2, window: 1, stride: 0.5, maxPersons: 2 };
  const got = [];
  for await (const w of poseWindows(blankFrames(30, read), walker, o)) {
    got.push([w.from, w.to, w.start, w.end, w.persons, read.count]);
    assertEquals(w.keypoint[0], 10 + w.from, "the window's own first frame");
  }
  // frames read when each window came: its last, and the one read ahead
  assertEquals(got, [
    [0, 10, 2, 3, 1, 11],
    [5, 15, 2.5, 3.5, 1, 16],
    [10, 20, 3, 4, 1, 21],
    [15, 25, 3.5, 4.5, 1, 26],
    [20, 30, 4, 5, 1, 30],
  ]);
  const short = [];
  for await (const w of poseWindows(blankFrames(7, read), walker, { ...o, window: 2 })) {
    short.push([w.from, w.to]);
  }
  assertEquals(short, [[0, 7]]);
});

videoTest("crop: MoveNet's input as tf.image.cropAndResize gives it (bilinear, 0 outside)", [
  NO_MODELS,
], async () => {
  const { cropResize } = await import("../data/pose/crop.ts");
  const H = 37, W = 53, box = { yMin: -0.2, xMin: 0.1, yMax: 0.9, xMax: 1.3 };
  const rgb = new Uint8Array(H * W * 3).map((_, i) => (i * 7919) % 251);
  const mine = cropResize({ index: 0, time: 0, width: W, height: H, rgb }, box, 19, 23);
  // tf.image.cropAndResize in the pose worker's project (data/pose/tfjs/, TF.js is not in ours)
  const corners = [box.yMin, box.xMin, box.yMax, box.xMax];
  const request = JSON.stringify({ height: H, width: W, box: corners, rows: 19, cols: 23 });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", TFJS_CONFIG, TFJS_CROP, request],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(rgb);
  await writer.close();
  const out = await child.output();
  assert(out.success, "crop_reference.ts failed");
  const ref = JSON.parse(new TextDecoder().decode(out.stdout)) as number[];
  assertEquals(ref.length, mine.length);
  // values a float32 rounding away from an integer may truncate either way
  assert(ref.every((v, i) => Math.abs(v - mine[i]) <= 1), "within 1 of TF.js");
  assert(mine.some((v) => v === 0) && mine.some((v) => v > 100), "padding and picture");
});

videoTest("video: vtest.avi probed and a few seconds decoded, resampled and cut", [
  NO_FFMPEG,
  NO_SAMPLES,
], async () => {
  const info = await probeVideo(VTEST);
  assertEquals([info.width, info.height, info.fps], [768, 576, 10]);
  assert(Math.abs(info.duration - 79.5) < 0.5, `duration ${info.duration}`);
  const times: number[] = [];
  for await (const f of decodeVideo(info, { fps: 5, start: 1, end: 3 })) {
    assertEquals(f.rgb.length, 768 * 576 * 3);
    times.push(f.time);
  }
  assertEquals(times, [1, 1.2, 1.4, 1.6, 1.8, 2, 2.2, 2.4, 2.6, 2.8]);
  let n = 0; // stopping early ends ffmpeg (the sanitizer-free test would hang otherwise)
  for await (const _ of decodeVideo(info)) if (++n === 2) break;
  assertEquals(n, 2);
});

videoTest("video: bad inputs are one line naming the file, exit 1, nothing written", [
  NO_FFMPEG,
  NO_SAMPLES,
], async (dir) => {
  const bad = {
    "not-a-video.mp4": new TextEncoder().encode("hello, not a video\n"),
    "empty.mp4": new Uint8Array(0),
    // the first 0.3 MB of 8 MB: its header announces 79.5 s
    "truncated.avi": (await Deno.readFile(VTEST)).subarray(0, 300_000),
  };
  const want = {
    "not-a-video.mp4": "not a readable video",
    "empty.mp4": "zero-length",
    "truncated.avi": "truncated",
  };
  for (const [name, bytes] of Object.entries(bad)) {
    const path = join(dir, name), out = join(dir, `${name}.arrow`);
    await Deno.writeFile(path, bytes);
    if (name === "truncated.avi" && NO_MODELS) continue; // it fails while estimating
    const r = await cli("poses", path, "-o", out);
    assertEquals(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("poses: "));
    assertEquals(lines.length, 1, r.stderr);
    assert(lines[0].startsWith(`heatformer: error: ${path}: `), lines[0]);
    assert(lines[0].includes(want[name as keyof typeof want]), lines[0]);
    assert(!exists(out) && !exists(`${out}.progress.jsonl`), "nothing written");
  }
});

videoTest(
  "MoveNet Lightning on messi5.jpg: one person facing the camera, left limbs on the right",
  [
    NO_FFMPEG,
    NO_SAMPLES,
    NO_MODELS,
  ],
  async () => {
    const { createMoveNet } = await import("../data/pose/movenet.ts");
    const { videoPoses } = await import("../data/video_poses.ts");
    const est = await createMoveNet("lightning", "auto", () => {});
    try {
      const v = await videoPoses(await probeVideo(MESSI), est, { maxPersons: 2 });
      assertEquals([v.frames, v.persons, v.info.width, v.info.height], [1, 1, 548, 342]);
      const x = (name: string) => v.keypoint[2 * joint(COCO17, name)];
      for (let j = 0; j < 17; j++) {
        // the player's box in the picture (arms out to x 65 and 375, feet at y 335)
        const [px, py] = [v.keypoint[2 * j], v.keypoint[2 * j + 1]];
        assert(px > 50 && px < 460 && py > 40 && py < 342, `${COCO17.joints[j]} at ${px}, ${py}`);
        assert(v.score[j] > 0 && v.score[j] <= 1, `score ${v.score[j]}`);
      }
      for (const part of ["shoulder", "elbow", "wrist", "hip", "ankle"]) {
        assert(x(`left_${part}`) > x(`right_${part}`), `left ${part} right of the right one`);
      }
      assert(v.score.reduce((a, b) => a + b) / 17 > 0.4, "confident");
    } finally {
      est.dispose();
    }
  },
);

/** A folder of class folders: walk/vtest.avi, still/messi.avi (a picture is a one-frame video). */
async function classFolders(dir: string): Promise<string> {
  const root = join(dir, "videos");
  await Deno.mkdir(join(root, "walk"), { recursive: true });
  await Deno.mkdir(join(root, "still"));
  await Deno.symlink(VTEST, join(root, "walk", "vtest.avi"));
  await Deno.symlink(MESSI, join(root, "still", "messi.avi"));
  return root;
}

videoTest("poses: a folder of class folders with MultiPose, resumed after a bad video", [
  NO_FFMPEG,
  NO_SAMPLES,
  NO_MODELS,
], async (dir) => {
  const root = await classFolders(dir), out = join(dir, "poses.arrow");
  await Deno.mkdir(join(root, "zbad"));
  await Deno.writeTextFile(join(root, "zbad", "bad.mp4"), "not a video");
  const flags = ["-o", out, "--model", "multipose", "--fps", "5", "--end", "2"];
  const first = await cli("poses", root, ...flags, "--max-persons", "3");
  assertEquals(first.code, 1, first.stderr);
  assert(first.stderr.includes("zbad/bad.mp4"), first.stderr);
  assert(!exists(out) && exists(`${out}.progress.jsonl`), "the two finished videos kept");
  await Deno.remove(join(root, "zbad"), { recursive: true });
  const r = await cli("poses", root, ...flags, "--max-persons", "3", "--json");
  assertEquals(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assertEquals([summary.resumed, summary.written, summary.classes], [2, 2, ["still", "walk"]]);
  assert(!exists(`${out}.progress.jsonl`), "the sidecar removed");
  const f = await SkeletonFile.open(out);
  try {
    assertEquals([f.meta.layout, f.meta.channels], ["coco17", 2]);
    const walk = await f.read(f.index.names.indexOf("walk/vtest.avi"));
    // three pedestrians in vtest.avi's first 2 s: all found, kept and tracked
    assertEquals([walk.frames, walk.persons, walk.label, walk.imgShape], [10, 3, 1, [576, 768]]);
    const src = JSON.parse(f.meta.extra!.videos).sources["walk/vtest.avi"];
    assertEquals([src.fps, src.start, src.width], [5, 0, 768]);
    assert(src.tracks >= 3 && src.tracks <= 6, `${src.tracks} tracks`);
    const present = (m: number) =>
      [...Array(10).keys()].filter((t) => walk.score![(m * 10 + t) * 17 + 5] > 0).length;
    assert(present(0) >= 8 && present(2) >= 5, `frames seen ${present(0)}, ${present(2)}`);
  } finally {
    await f.close();
  }
});

videoTest("predict RUN video: one prediction per window with its time range", [
  NO_FFMPEG,
  NO_SAMPLES,
  NO_MODELS,
], async (dir) => {
  const run = await coco17Run(dir);
  const r = await cli(
    ...["predict", run, VTEST, "--fps", "5", "--end", "2", "--window", "1s", "--stride", "1s"],
    ...["--top-k", "1", "--json"],
  );
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(lines.map((l) => [l.name, l.start, l.end]), [
    ["vtest.avi@0.00-1.00s", 0, 1],
    ["vtest.avi@1.00-2.00s", 1, 2],
  ]);
  assert(lines.every((l) => ["a", "b"].includes(l.top[0].class)), r.stdout);
});
