// vtest.avi's pedestrians counted by hand against `heatformer poses --model multipose` and its
// tracking, then the same dataset inspected, rendered and trained on for an epoch. About a
// minute and a half on 2 cores (MultiPose at about 3 frames/s, 100 frames).
import { join } from "node:path";
import { keypointBox } from "../data/pose/estimator.ts";
import { SkeletonFile, type SkeletonRecord } from "../data/schema.ts";
import { assert, assertEquals } from "./assert.ts";
import { cli } from "./cli.ts";
import { NO_FFMPEG, NO_MODELS, NO_SAMPLES, videoTest, VTEST } from "./video.ts";

/**
 * The people of vtest.avi's first 20 s, counted by hand: its frames extracted at 2 frames/s
 * (`ffmpeg -i vtest.avi -vf fps=2,crop=768:340:0:40,drawgrid=w=64:h=64 -frames:v 40`, a 64-pixel
 * grid over each) and looked at one by one, each person followed from frame to frame by their
 * clothes. Listed: every 2 s a person is in view, the centre of their body in the video's pixels,
 * read off the grid to about 15 pixels. In view (seconds) and who they are:
 * - A, 0-20: dark jacket; stands behind the sign post from 3 s to 15 s, then walks off right
 * - B, 0-20: brown jacket and jeans; stands beside A, walks off with him
 * - C, 0-14.8: black coat; walks left, turns back at 8 s, leaves on the right
 * - D, 1-20 and E, 1.3-20: red and navy jacket with a sheet of paper, and long dark coat; come
 *   in together from the right and walk up the road to the top right, where they stay
 * - F, 4-20: dark jacket; in from the right, up the road and back down
 * - G, 11.3-20: light blue hooded jacket; in from the right, walks left
 * - I, 13-20: navy jacket; in from the right, walks left
 * Left out: a ninth person far off on the top-left path (7.5 s to 17 s), 25 pixels tall.
 */
const HAND: Record<string, [t: number, x: number, y: number][]> = {
  A: [[0, 280, 262], [2, 382, 230], [4, 412, 223], [6, 415, 223], [8, 415, 223], [10, 440, 220]],
  B: [[0, 512, 198], [2, 410, 215], [4, 390, 216], [6, 385, 219], [8, 385, 220], [10, 393, 216]],
  C: [[0, 650, 284], [2, 445, 272], [4, 455, 226], [6, 362, 202], [8, 275, 213], [10, 372, 237]],
  D: [[2, 695, 321], [4, 578, 277], [6, 482, 242], [8, 462, 211], [10, 510, 178], [12, 580, 160]],
  E: [[2, 732, 316], [4, 607, 271], [6, 512, 241], [8, 490, 210], [10, 535, 181], [12, 605, 163]],
  F: [[4, 752, 330], [6, 627, 282], [8, 580, 231], [10, 608, 191], [12, 670, 162]],
  G: [[12, 685, 256], [14, 522, 226], [16, 355, 207], [18, 208, 195]],
  I: [[14, 680, 287], [16, 505, 266], [18, 362, 250]],
};
// the same people from 12 s on (one line each above would pass the formatter's width)
HAND.A.push([12, 430, 224], [14, 440, 222], [16, 495, 244], [18, 615, 266]);
HAND.B.push([12, 390, 220], [14, 398, 226], [16, 452, 251], [18, 525, 268]);
HAND.C.push([12, 545, 256], [14, 715, 270]);
HAND.D.push([14, 630, 144], [16, 668, 130], [18, 688, 128]);
HAND.E.push([14, 650, 146], [16, 692, 131], [18, 715, 130]);
HAND.F.push([14, 718, 146], [16, 680, 151], [18, 593, 165]);

const FPS = 5, V = 17;

/** A person's position at `t` s: between the two nearest points counted (null outside them). */
function pathAt(at: [number, number, number][], t: number): [number, number] | null {
  const a = at.filter(([s]) => s <= t).at(-1), b = at.find(([s]) => s >= t);
  if (!a || !b) return null;
  const u = b[0] === a[0] ? 0 : (t - a[0]) / (b[0] - a[0]);
  return [a[1] + u * (b[1] - a[1]), a[2] + u * (b[2] - a[2])];
}

/**
 * The track (person m of the sample) at a point in frame t: of the tracks whose keypoints' box,
 * 15 pixels wider each way, holds it, the one whose centre is nearest; -1 where none does.
 */
function trackAt(r: SkeletonRecord, t: number, [x, y]: [number, number]): number {
  let best = -1, d = Infinity;
  for (let m = 0; m < r.persons; m++) {
    const o = (m * r.frames + t) * V, scores = r.score!.subarray(o, o + V);
    if (!scores.some((s) => s > 0)) continue;
    const [x1, y1, x2, y2] = keypointBox(r.keypoint.subarray(2 * o, 2 * (o + V)), scores);
    if (x < x1 - 15 || x > x2 + 15 || y < y1 - 15 || y > y2 + 15) continue;
    const e = Math.hypot((x1 + x2) / 2 - x, (y1 + y2) / 2 - y);
    if (e < d) (d = e), (best = m);
  }
  return best;
}

/** For each person counted: the share of their frames in view that their most frequent track holds. */
function coverage(
  r: SkeletonRecord,
): Record<string, { frames: number; found: number; main: number }> {
  const out: Record<string, { frames: number; found: number; main: number }> = {};
  for (const [name, path] of Object.entries(HAND)) {
    const ids: number[] = [];
    for (let t = 0; t < r.frames; t++) {
      const q = pathAt(path, t / FPS);
      if (q) ids.push(trackAt(r, t, q));
    }
    const count = new Map<number, number>();
    for (const id of ids.filter((i) => i >= 0)) count.set(id, (count.get(id) ?? 0) + 1);
    const main = Math.max(0, ...count.values());
    out[name] = { frames: ids.length, found: ids.filter((i) => i >= 0).length, main };
  }
  return out;
}

videoTest("tracking vtest.avi's first 20 s: each person counted by hand mostly one id", [
  NO_FFMPEG,
  NO_SAMPLES,
  NO_MODELS,
], async (dir) => {
  const out = join(dir, "vtest.arrow");
  const model = ["--model", "multipose", "--fps", String(FPS), "--end", "20"];
  const r = await cli("poses", VTEST, "-o", out, ...model, "--max-persons", "50", "--json");
  assertEquals(r.code, 0, r.stderr);
  const f = await SkeletonFile.open(out);
  let rec: SkeletonRecord, tracks: number;
  try {
    rec = await f.read(0);
    tracks = JSON.parse(f.meta.extra!.videos).sources["vtest.avi"].tracks;
  } finally {
    await f.close();
  }
  assertEquals([rec.frames, rec.persons], [100, tracks], "every track kept");
  const cov = coverage(rec);
  const lengths = [...Array(rec.persons).keys()].map((m) =>
    [...Array(rec.frames).keys()].filter((t) => rec.score![(m * rec.frames + t) * V + 0] > 0)
      .length
  );
  console.log(
    `${tracks} tracks; people counted by hand (frames in view, found, held by one id): ` +
      Object.entries(cov).map(([n, c]) => `${n} ${c.frames}/${c.found}/${c.main}`).join(", "),
  );
  const shares = Object.values(cov).map((c) => c.main / c.frames);
  const mean = shares.reduce((a, b) => a + b) / shares.length;
  // Tolerances, from what MultiPose can do here (docs/video.md): it returns at most 6 people and
  // 8 or 9 are in view after 13 s; A stands behind the sign post for 10 s (found in 60% of his
  // frames) within 30 pixels of B, and the two trade ids. So: 5 of the 8 held by one id for most
  // of their time in view, the mean share at least a half, at most two tracks a person (the
  // tracker without motion prediction and MultiPose's people scoring 0.25 or more, as before
  // 2026-12-06: 2 of 8, a mean of 0.37, 33 tracks; with them: 6 of 8, 0.60, 15 tracks)
  assert(shares.filter((s) => s >= 0.5).length >= 5, `held by one id: ${shares.join(", ")}`);
  assert(mean >= 0.5, `mean share held by one id ${mean}`);
  assert(tracks <= 2 * 9, `${tracks} tracks for 9 people`);
  assert(lengths.filter((l) => l >= FPS).length >= 8, `tracks of 1 s or more: ${lengths}`);

  // the same dataset inspected, rendered (heatmaps) and trained on for an epoch
  const inspect = await cli("inspect", out, "--json");
  assertEquals(inspect.code, 0, inspect.stderr);
  assertEquals(JSON.parse(inspect.stdout).layout, "coco17");
  const sheet = join(dir, "heat.png");
  const render = await cli("render", out, "--sample", "vtest.avi", "-o", sheet, "--clips", "1");
  assertEquals(render.code, 0, render.stderr);
  const train = await cli(
    ...["train", "--data", out, "--split", "all:all", "--epochs", "1", "--clip-len", "8"],
    ...["--size", "16", "--batch-size", "1", "--test-clips", "1", "--no-flip-test"],
    ...["--out", join(dir, "run"), "--json"],
  );
  assertEquals(train.code, 0, train.stderr);
});
