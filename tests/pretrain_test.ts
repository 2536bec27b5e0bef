// Pretraining (`heatformer pretrain`, run.objective motion3d) and what it rests on: layout
// conversions (COCO-17 / Kinect -> H36M-17, as MotionBERT's coco2h36m), training on a fraction
// of a split, MotionBERT's pretraining pairs (noisy, masked 2D in, root-relative 3D out) and
// loss, and a classifier fine-tuned from a pretrained encoder.
import { layoutByName } from "../data/layouts.ts";
import { layoutMap, layoutTargets, mapRecord } from "../data/layout_map.ts";
import { MOTION_NOISE, motionPair } from "../data/motion_pretrain.ts";
import { splitFraction } from "../data/protocols.ts";
import { DataError, SkeletonFile, type SkeletonRecord } from "../data/schema.ts";
import { Rng } from "../layers/init.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { motionLoss } from "../training/motion_loss.ts";
import { train } from "../training/trainer.ts";
import { RunLock } from "../training/run_lock.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { runCli } from "./cli.ts";
import { gpuTest, readF32 } from "./helpers.ts";
import { tiny, tinyTest } from "./tiny.ts";

/** One frame, one person, joint j at (j, 10 j, 100 j) with score j. */
function indexRecord(joints: number): SkeletonRecord {
  return {
    name: "r",
    label: 0,
    subject: 0,
    camera: 0,
    setup: 0,
    replication: 0,
    frames: 1,
    persons: 1,
    keypoint: Float32Array.from(
      { length: joints * 3 },
      (_, i) => Math.floor(i / 3) * 10 ** (i % 3),
    ),
    score: Float32Array.from({ length: joints }, (_, j) => j),
    keypoint2d: null,
    imgShape: null,
    splits: ["train"],
  };
}

Deno.test("layout map: COCO-17 -> H36M-17 is MotionBERT's coco2h36m", () => {
  const m = layoutMap("coco17", "h36m17")!;
  const r = mapRecord(indexRecord(17), 3, m);
  const x = Array.from({ length: 17 }, (_, j) => r.keypoint[j * 3]);
  // coco2h36m by hand: root = hips' mean (11, 12), belly = mean(root, neck), neck =
  // shoulders' mean (5, 6), head = eyes' mean (1, 2), the limbs one to one
  assertEquals(x, [11.5, 12, 14, 16, 11, 13, 15, 8.5, 5.5, 0, 1.5, 5, 7, 9, 6, 8, 10]);
  assertEquals(r.keypoint[7 * 3 + 2], 850); // z (here 100 j) is averaged alike
  assertEquals(r.score![10], 1.5); // and so are the scores
  // MotionBERT's pipeline leaves the scores in COCO's order (H36M joint j gets COCO joint j's)
  const asMotionbert = mapRecord(indexRecord(17), 3, m, "source");
  assertEquals(Array.from(asMotionbert.score!), Array.from({ length: 17 }, (_, j) => j));
  // every known conversion names joints its layouts have
  for (const from of ["coco17", "kinect20", "ntu25"]) {
    for (const to of layoutTargets(from)) {
      assertEquals(layoutMap(from, to)!.sources.length, layoutByName(to).joints.length);
    }
  }
  assertEquals(layoutMap("coco17", "coco17"), null);
  let err = "";
  try {
    layoutMap("h36m17", "coco17");
  } catch (e) {
    err = (e as Error).message;
  }
  assert(err.includes("no conversion from the h36m17 layout to coco17"), err);
});

Deno.test("train fraction: per class, fixed across seeds, nested, at least one clip", () => {
  const labels = Array.from({ length: 100 }, (_, i) => i % 3 === 0 ? 0 : i < 90 ? 1 : 2);
  const idx = labels.map((_, i) => i);
  const tenth = splitFraction(idx, labels, 0.1), quarter = splitFraction(idx, labels, 0.25);
  const count = (s: number[], k: number) => s.filter((i) => labels[i] === k).length;
  // classes of 34, 59 and 7 samples: ceil(0.1 n) each, at least one
  assertEquals([0, 1, 2].map((k) => count(tenth, k)), [4, 6, 1]);
  assertEquals([0, 1, 2].map((k) => count(quarter, k)), [9, 15, 2]);
  assert(tenth.every((i) => quarter.includes(i)), "the 10% clips are among the 25% ones");
  assertEquals(splitFraction(idx, labels, 0.1), tenth);
  assertEquals(splitFraction(idx, labels, 1), idx);
  assert(tenth.join() !== idx.slice(0, tenth.length).join(), "drawn, not the first clips");
});

/** A 3D record (kinect20-like values: y up, metres) moving over `frames` frames. */
function walker(frames: number, joints: number): SkeletonRecord {
  const r = indexRecord(joints);
  const kp = new Float32Array(frames * joints * 3);
  for (let f = 0; f < frames; f++) {
    for (let j = 0; j < joints; j++) {
      kp.set(
        [0.1 * f + 0.05 * Math.sin(j), 1 - 0.08 * j, 3 + 0.02 * Math.cos(j * f)],
        (f * joints + j) * 3,
      );
    }
  }
  return { ...r, frames, keypoint: kp, score: null };
}

Deno.test("motion pairs: the 2D view and the root-relative 3D target share one crop", () => {
  const layout = layoutByName("h36m17");
  const r = walker(12, 17), frames = [0, 2, 4, 6, 8, 10, 11, 11];
  const { input, target } = motionPair(r, frames, layout);
  const T = frames.length, v = 17;
  for (let t = 0; t < T; t++) {
    const root = (t * v + layout.root) * 3;
    assertEquals([target[root], target[root + 1], target[root + 2]], [0, 0, 0]);
    for (let j = 0; j < v; j++) {
      const o = (t * v + j) * 3;
      // image y points down: the 3D y (up) is negated, in the same units as the target
      assert(Math.abs(input[o] - input[root] - target[o]) < 1e-5, `x t${t} j${j}`);
      assert(Math.abs(input[o + 1] - input[root + 1] - target[o + 1]) < 1e-5, `y t${t} j${j}`);
      assertEquals(input[o + 2], 1);
      assert(Math.abs(input[o]) <= 1 && Math.abs(input[o + 1]) <= 1, "inside the crop");
    }
  }
  // the head (joint 16 of this walker, highest y in 3D) is above the pelvis in the image
  assert(input[16 * 3 + 1] > input[1], "y is down in the image");
  // training: noise and masks (10% of frames, 5% of joints zeroed), reproducible by seed
  const a = motionPair(r, frames, layout, new Rng(5)),
    b = motionPair(r, frames, layout, new Rng(5));
  assertEquals(Array.from(a.input), Array.from(b.input));
  let zeroed = 0, total = 0;
  for (let s = 0; s < 200; s++) {
    const p = motionPair(r, frames, layout, new Rng(s));
    for (let i = 2; i < p.input.length; i += 3) (total++, zeroed += p.input[i] === 0 ? 1 : 0);
  }
  const rate = zeroed / total; // 1 - 0.9 x 0.95 = 0.145
  assert(rate > 0.11 && rate < 0.18, `masked ${rate}`);
  // a flip alone (no turn, noise or mask): left and right swap, x negates, in both
  const flipOnly = { ...MOTION_NOISE, rotation: 0, keyframeStd: 0, frameStd: 0, jointMask: 0 };
  const f = motionPair(r, frames, layout, new Rng(1), { ...flipOnly, frameMask: 0, flip: 1 });
  // the same draws unflipped (the flip's draw is made either way, so the crop ratio agrees)
  const u = motionPair(r, frames, layout, new Rng(1), { ...flipOnly, frameMask: 0, flip: 0 });
  const [lw, rw] = [layout.joints.indexOf("left_wrist"), layout.joints.indexOf("right_wrist")];
  for (let c = 0; c < 3; c++) {
    const sign = c === 0 ? -1 : 1;
    assert(Math.abs(f.target[lw * 3 + c] - sign * u.target[rw * 3 + c]) < 1e-5, `target c${c}`);
  }
  assert(f.input[lw * 3] * u.input[rw * 3] < 0, "the mirrored wrist is on the other side");
  // a frame without its root: nothing to be relative to, so a blank frame
  const rootless = walker(12, 17);
  rootless.keypoint.fill(0, 2 * 17 * 3, 2 * 17 * 3 + 3); // frame 2's pelvis
  const blank = motionPair(rootless, frames, layout);
  assert(blank.input.subarray(17 * 3, 2 * 17 * 3).every((x) => x === 0), "frame 1 (frame 2) blank");
  assert(blank.target.subarray(17 * 3, 2 * 17 * 3).every((x) => x === 0), "and its target");
});

gpuTest("motion loss: MPJPE + 20 x velocity MPJPE, by hand", async (rt) => {
  // one sample, two frames, one joint: predicted (3, 4, 0) then (0, 0, 0) against zeros:
  // MPJPE (5 + 0) / 2, velocity error |(-3, -4, 0)| = 5, so 2.5 + 20 x 5
  const pred = rt.tensor(new Float32Array([3, 4, 0, 0, 0, 0]), [1, 2, 1, 3]);
  const target = rt.tensor(new Float32Array(6), [1, 2, 1, 3]);
  const [loss] = await readF32(rt, motionLoss(pred, target));
  assert(Math.abs(loss - 102.5) < 1e-4, `${loss}`);
});

tinyTest(
  "pretrain: MotionBERT's task on 3D data (H36M joints); a classifier fine-tunes from it",
  async (rt, { dir, data }) => {
    const pre = `${dir}/pre`;
    const s = await train(
      rt,
      tiny(data, pre, {
        data: { layout: "h36m17" },
        model: { preset: "motionbert-tiny" },
        input: { kind: "kp2d", persons: 1 },
        run: { epochs: 1, objective: "motion3d", recipe: "motionbert-pretrain" },
      }),
      false,
    );
    assert(s.motion && s.motion.mpjpe > 0 && s.motion.mpjpe < 2, JSON.stringify(s.motion));
    const enc = await readSafetensors(`${pre}/encoder.safetensors`);
    assertEquals(enc.tensors.get("model.motion_head.weight")?.shape, [3, 32]);
    assert(![...enc.tensors.keys()].some((k) => k.startsWith("opt.")), "no optimiser state");
    // no classifier to evaluate; its pose head exports as MotionBERT's backbone.head
    const ev = await runCli(["eval", pre]);
    assert(ev.code === 2 && ev.stderr.includes("a pretraining checkpoint"), ev.stderr);
    const ex = await runCli(["export", "motionbert", pre, "-o", `${dir}/pre.pt`, "--json"]);
    assertEquals(ex.code, 0, ex.stderr);
    const metrics = (await Deno.readTextFile(`${pre}/metrics.jsonl`)).trim().split("\n");
    assert(JSON.parse(metrics[0]).valError > 0, metrics[0]);
    // a heatmap classifier of the same widths takes all but its input embedding and head
    await train(
      rt,
      tiny(data, `${dir}/ft`, {
        data: { layout: "h36m17", trainFraction: 0.5 },
        model: { preset: "motionbert-tiny" },
        run: { epochs: 1, init: pre },
      }),
      false,
    );
    const init = JSON.parse(await Deno.readTextFile(`${dir}/ft/config.json`)).record.init;
    assert(init.loaded > 20, JSON.stringify(init));
    assertEquals(init.unexpected, ["motion_head.weight", "motion_head.bias"]);
    assert(init.missing.includes("head.fc1.weight"), JSON.stringify(init.missing));
    assertEquals(init.mismatched.map((m: { name: string }) => m.name), ["joints_embed.weight"]);
    // eval reads the (ntu25) data converted to the model's H36M joints, as training did
    const r = await runCli(["eval", `${dir}/ft`, "--json"]);
    assertEquals(r.code, 0, r.stderr);
    assert(JSON.parse(r.stdout).top1 >= 0, r.stdout);
  },
);

tinyTest(
  "pretrain: refused on 2D data, for other models, and --init pretrained by preset",
  async (rt, { dir, data }) => {
    const refused = async (layer: Parameters<typeof tiny>[2], want: string) => {
      const e = await assertRejects(() => train(rt, tiny(data, `${dir}/x`, layer), false), Error);
      assert(e.message.includes(want), e.message);
    };
    await refused(
      { input: { kind: "kp2d", persons: 1 }, run: { objective: "motion3d" } },
      "MotionBERT's task needs its DSTformer",
    );
    await refused({ run: { init: "pretrained" } }, "no pretrained encoder for vanilla-tiny");
    // the encoder kept beside the sources (examples/pretrain.sh made it; docs/pretraining.md)
    await train(
      rt,
      tiny(data, `${dir}/kp`, {
        data: { layout: "h36m17" },
        model: { preset: "motionbert-tiny" },
        input: { kind: "kp2d" },
        run: { epochs: 1, init: "pretrained" },
      }),
      false,
    );
    const init = JSON.parse(await Deno.readTextFile(`${dir}/kp/config.json`)).record.init;
    assert(init.source.endsWith("assets/pretrained/motionbert-tiny-nwucla-h36m17.safetensors"));
    // the tiny run's 8 frames against the encoder's 16: all but the frame table loads
    assertEquals(init.mismatched.map((m: { name: string }) => m.name), ["temp_embed.weight"]);
    assert(init.loaded > 20, JSON.stringify(init));
    // a run still training (its folder locked by a live process) is no start yet
    await Deno.mkdir(`${dir}/busy`);
    const lock = await RunLock.acquire(`${dir}/busy`);
    try {
      await refused({ run: { init: `${dir}/busy` } }, "is still being trained (process");
    } finally {
      lock.release();
    }
    const file = await SkeletonFile.open(data, { layout: "h36m17" });
    assertEquals(file.meta.layout, "h36m17");
    assertEquals((await file.read(0)).keypoint.length % 17, 0);
    await file.close();
    const uneven = await assertRejects(
      () => SkeletonFile.open(data, { layout: "h36m17", scores: "source" }),
      DataError,
    );
    assert(uneven.message.includes("ntu25 has 25 joints, h36m17 17"), uneven.message);
    const bad = await assertRejects(() => SkeletonFile.open(data, { layout: "coco17" }), DataError);
    assert(bad.message.includes(data), bad.message);
  },
);
