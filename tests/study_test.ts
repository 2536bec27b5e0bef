// The study, faithfully: presets carry their input and recipe, flags override one field and
// the run records where each came from, MotionBERT's schedule and frame resampling, the
// DSTformer's heatmap persons, and `train --dry-run`.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { noGrad } from "../autograd/tape.ts";
import { convertNtu } from "../data/convert.ts";
import { resampleClip } from "../data/pipeline.ts";
import type { SkeletonFile } from "../data/schema.ts";
import { asFloat32, readSafetensors } from "../io/safetensors.ts";
import { HeatmapRenderer, renderHeatmaps } from "../kernels/heatmap.ts";
import type { Rng } from "../layers/init.ts";
import type { ModelConfig } from "../models/config.ts";
import { DSTformer } from "../models/dstformer.ts";
import { parameterCount, PRESETS } from "../models/presets.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { effectiveLr, getLeaf, type Layer, LEAVES, withRunFolder } from "../training/experiment.ts";
import { dryRun } from "../training/dry_run.ts";
import { resolveExperiment } from "../training/resolve.ts";
import { learningRate } from "../training/schedule.ts";
import { modelConfigFor } from "../training/setup.ts";
import { assert, assertEquals } from "./assert.ts";
import { dataTest } from "./datasets.ts";
import { assertClose, gpuTest, readF32 } from "./helpers.ts";

/** A stand-in for an NTU60 file of 17 COCO joints (the study's HRNet poses). */
const NTU60_COCO = {
  meta: { layout: "coco17", classes: Array.from({ length: 60 }, (_, i) => `c${i}`) },
} as unknown as SkeletonFile;

/** The experiment of flag-like layers over the fixed ones (training/resolve.ts). */
const resolveFlags = (flags: Layer, file: Layer = {}) =>
  resolveExperiment([{ origin: "config", layer: file }, { origin: "flag", layer: flags }]);

Deno.test("study presets resolve to the study's input, recipe and Table 2 count without a flag", () => {
  for (const p of PRESETS.filter((x) => x.studyParams)) {
    const { experiment: e, origins } = resolveFlags({ model: { preset: p.name } });
    const frames = p.config.family.startsWith("vivit") ? 56 : 48;
    const i = e.input;
    assertEquals([i.kind, i.clipLen, i.size, i.persons], ["heatmap", frames, 56, 2]);
    assertEquals(
      [e.run.recipe, origins["input.clipLen"], origins["optim.optimizer"]],
      [p.recipe, `preset ${p.name}`, `recipe ${p.recipe}`],
    );
    const n = parameterCount(modelConfigFor(e, NTU60_COCO)) / 1e6;
    assert(Math.abs(n / p.studyParams! - 1) <= 0.03, `${p.name}: ${n}M vs ${p.studyParams}M`);
  }
  // MotionBERT: its recipe, and its keypoint pipeline for the keypoint rows
  const mb = resolveFlags({ model: { preset: "motionbert" } }).experiment;
  const o = mb.optim;
  assertEquals([o.optimizer, o.lr, o.weightDecay, mb.schedule.kind, mb.schedule.gamma], [
    "adamw",
    1e-4,
    0.01,
    "exponential",
    0.99,
  ]);
  assertEquals([mb.run.epochs, o.batchSize, o.labelSmoothing, o.clipNorm], [300, 32, 0, 0]);
  const kp = resolveFlags({ model: { preset: "motionbert" }, input: { kind: "kp2d" } }).experiment;
  assertEquals([kp.input.clipLen, kp.input.sampling, kp.augment.flip], [243, "resample", 0]);
  // the test protocol follows the input: PoseConv3D's for heatmaps, one view for keypoints
  assertEquals([mb.eval.clips, mb.eval.flip, kp.eval.clips, kp.eval.flip], [10, true, 1, false]);
  const one = resolveFlags({ eval: { clips: 1, flip: false } }).experiment;
  assertEquals([one.eval.clips, one.eval.flip], [1, false]);
  // the -tiny presets keep the CPU-sized input and recipe of the quick start
  const tiny = resolveFlags({}).experiment;
  assertEquals(
    [tiny.model.preset, tiny.input.clipLen, tiny.input.size, tiny.optim.lr, tiny.run.epochs],
    ["vanilla-tiny", 16, 32, 1e-3, 8],
  );
});

Deno.test("a flag overrides one leaf and the origins say so; recipes scale lr with the batch", () => {
  const base = resolveFlags({ model: { preset: "motionbert" } });
  const over = resolveFlags({ model: { preset: "motionbert" }, optim: { lr: 3e-4 } });
  const changed = LEAVES.map((l) => l.path).filter((p) =>
    JSON.stringify(getLeaf(over.experiment, p)) !== JSON.stringify(getLeaf(base.experiment, p))
  );
  assertEquals(changed, ["optim.lr"]);
  const origin = (p: string) => over.origins[p];
  assertEquals([origin("optim.lr"), origin("optim.weightDecay"), origin("input.size")], [
    "flag",
    "recipe motionbert",
    "preset motionbert",
  ]);
  const file = resolveFlags({ model: { preset: "motionbert" } }, { optim: { weightDecay: 0.1 } });
  assertEquals([file.experiment.optim.weightDecay, file.origins["optim.weightDecay"]], [
    0.1,
    "config",
  ]);
  // PoseConv3D: 0.4 at batch 256, linearly; optim.lrBatch 0 takes a given lr as it is
  const lrOf = (l: Layer) =>
    effectiveLr(resolveFlags({ run: { recipe: "posec3d" }, ...l }).experiment);
  assertEquals(lrOf({ optim: { batchSize: 64 } }), 0.1);
  assertEquals(lrOf({ optim: { batchSize: 64, lr: 0.3, lrBatch: 0 } }), 0.3);
  assertEquals(lrOf({ optim: { batchSize: 64, lr: 0.8 } }), 0.2); // 0.8 at batch 256
  // its flips and 10 flipped test views are the heatmap pipeline's, not keypoints'
  const kp = resolveFlags({ run: { recipe: "posec3d" }, input: { kind: "kp2d" } }).experiment;
  assertEquals([kp.augment.flip, kp.eval.clips, kp.eval.flip], [0, 1, false]);
  const aug = resolveFlags({ model: { preset: "vanilla-big" }, run: { recipe: "vivit+aug" } })
    .experiment;
  assertEquals([aug.augment.rotation, aug.augment.noise, aug.augment.shift, aug.optim.optimizer], [
    10,
    0.01,
    4,
    "sgd",
  ]);
});

Deno.test("exponential schedule: lr x gamma after every epoch, from the end of the warm-up", () => {
  const s = {
    kind: "exponential" as const,
    lr: 1e-4,
    warmupSteps: 0,
    totalSteps: 300 * 10,
    stepsPerEpoch: 10,
    milestones: [],
    gamma: 0.99,
    minRatio: 0,
  };
  assertEquals(learningRate(s, 0), 1e-4);
  assertEquals(learningRate(s, 9), 1e-4); // constant within an epoch
  assertClose("epoch 1", [learningRate(s, 10)], [0.99e-4], { atol: 1e-12, rtol: 0 });
  assertClose("epoch 299", [learningRate(s, 2999)], [1e-4 * 0.99 ** 299], { atol: 1e-12, rtol: 0 });
  const w = { ...s, warmupSteps: 5 };
  const steps = [0, 5, 14, 15].map((k) => learningRate(w, k));
  assertClose("warm-up", steps, [2e-5, 1e-4, 1e-4, 0.99e-4], { atol: 1e-12, rtol: 0 });
});

Deno.test("resample: MotionBERT's frame indices in training and at test (fixtures)", async () => {
  const st = await readSafetensors(
    fileURLToPath(new URL("./fixtures/motionbert_kp.safetensors", import.meta.url)),
  );
  const cases = [...st.tensors.keys()].filter((k) => k.startsWith("resample/"))
    .map((k) => k.split("/")[1]).filter((v, i, a) => a.indexOf(v) === i);
  assert(cases.length === 7, `${cases.length} resample cases`);
  for (const c of cases) {
    const [n, T] = c.split("_").map(Number);
    const draws = asFloat32(st.tensors.get(`resample/${c}/draws`)!);
    let k = 0;
    const rng = { uniform: () => draws[k++] } as unknown as Rng;
    const expect = (s: string) =>
      Array.from(st.tensors.get(`resample/${c}/${s}`)!.data as Int32Array);
    assertEquals(resampleClip(n, T, rng), expect("train"), `${c} train`);
    assertEquals(k, T, `${c}: one draw per frame`);
    assertEquals(resampleClip(n, T, rng, true), expect("test"), `${c} test`);
  }
});

/** A small DSTformer on 2-person heatmaps, its weights from another one's where shapes agree. */
function dst(rt: Runtime, persons: ModelConfig["heatmapPersons"], channels: number): DSTformer {
  const c: ModelConfig = {
    ...PRESETS.find((p) => p.name === "motionbert-tiny")!.config,
    heatmapPersons: persons,
    classes: 4,
    input: { kind: "heatmap", channels, frames: 4, size: 8, persons: 2 },
  };
  return new DSTformer(rt, c, 3).train(false);
}

gpuTest(
  "DSTformer heatmap persons: stacked tokens are person-major, separate averages persons",
  async (rt) => {
    const J = 3, T = 4, S = 8, HW = S * S;
    const x = new Float32Array(2 * 2 * J * T * HW).map((_, i) => Math.sin(i * 0.37) ** 2);
    const merged = dst(rt, "merge", J), stacked = dst(rt, "stack", 2 * J);
    const separate = dst(rt, "separate", 2 * J);
    // stacked, person 2 all zero == merged on person 1 with the first HW rows of the embedding
    const xs = x.slice();
    for (let n = 0; n < 2; n++) xs.fill(0, (n * 2 + 1) * J * T * HW, (n * 2 + 2) * J * T * HW);
    // the embedding (d, 2*HW): each output's first HW inputs are person 1's plane
    const w = (await rt.read(stacked.jointsEmbed.weight)) as Float32Array;
    const d = w.length / (2 * HW);
    const first = new Float32Array(d * HW);
    for (let o = 0; o < d; o++) first.set(w.subarray(o * 2 * HW, o * 2 * HW + HW), o * HW);
    for (const [name, p] of merged.namedParams()) {
      const src = stacked.namedParams().get(name)!.tensor;
      rt.write(
        p.tensor,
        name === "joints_embed.weight" ? first : (await rt.read(src)) as Float32Array,
      );
    }
    const person1 = new Float32Array(2 * J * T * HW);
    for (let n = 0; n < 2; n++) {
      person1.set(xs.subarray(n * 2 * J * T * HW, (n * 2 + 1) * J * T * HW), n * J * T * HW);
    }
    const run = (m: DSTformer, data: Float32Array, ch: number) =>
      noGrad(() => m.forward(rt.tensor(data, [2, ch, T, S, S], "f32")));
    const a = await readF32(rt, run(stacked, xs, 2 * J));
    const b = await readF32(rt, run(merged, person1, J));
    assertClose("stack vs merge", a, b, { atol: 1e-5, rtol: 1e-4 });
    // separate, both persons equal == merged on one of them (mean of equal features)
    for (const [name, p] of merged.namedParams()) {
      rt.write(
        separate.namedParams().get(name)!.tensor,
        (await rt.read(p.tensor)) as Float32Array,
      );
    }
    const twins = new Float32Array(x.length);
    for (let n = 0; n < 2; n++) {
      const one = person1.subarray(n * J * T * HW, (n + 1) * J * T * HW);
      twins.set(one, n * 2 * J * T * HW);
      twins.set(one, (n * 2 + 1) * J * T * HW);
    }
    const c = await readF32(rt, run(separate, twins, 2 * J));
    assertClose("separate vs merge", c, b, { atol: 1e-5, rtol: 1e-4 });
    for (const m of [merged, stacked, separate]) {
      for (const p of m.namedParams().values()) {
        [p.tensor, p.tensor.grad].forEach((t) => t && rt.dispose(t));
      }
    }
  },
);

dataTest("train --dry-run: resolves, times real steps on 5 NTU samples, writes no run folder", [
  "ntu60-samples",
], async (dir) => {
  const { runtime } = await import("./helpers.ts");
  const rt = await runtime();
  const tmp = await Deno.makeTempDir();
  const data = join(tmp, "ntu5.arrow");
  await convertNtu(dir, data, { classes: 60 });
  const out = join(tmp, "run");
  const { experiment, origins } = resolveFlags({
    model: { preset: "motionbert-tiny" },
    data: { path: data, split: "ntu60-xsub" },
    input: { clipLen: 8, size: 16 },
    run: { out },
  });
  const r = await dryRun(rt, withRunFolder(experiment), origins, 1);
  assertEquals([r.dryRun, r.model, r.recipe, r.data.train, r.data.val, r.data.classes], [
    true,
    "motionbert-tiny",
    "cpu",
    3,
    2,
    60,
  ]);
  assertEquals([r.batchSize, r.stepsPerEpoch, r.input.shape], [16, 0, [25, 8, 16, 16]]);
  assert(r.warnings.some((w) => w.includes("fewer than a batch")), r.warnings.join("; "));
  assert(r.msPerStep > 0 && r.peakGpuBytes > 0 && r.parameters > 0, JSON.stringify(r));
  assert(r.estimate.runSeconds > 0 && r.gflopsPerSample > 0, JSON.stringify(r.estimate));
  assertEquals(await Deno.stat(out).then(() => true, () => false), false);
  await Deno.remove(tmp, { recursive: true });
});

gpuTest("heatmaps with split persons: channel m*C + c is person m's joint c alone", async (rt) => {
  const [N, M, T, V, S] = [2, 2, 3, 4, 12];
  const xy = new Float32Array(N * M * T * V * 2).map((_, i) => 1 + ((i * 7.31) % (S - 2)));
  const score = new Float32Array(N * M * T * V).map((_, i) => 0.3 + ((i * 0.17) % 0.7));
  const spec = { size: S, sigma: 0.6, joints: true, limbs: [[0, 1], [2, 3]] as const };
  const renderer = new HeatmapRenderer(rt, { ...spec, splitPersons: true });
  const split = await readF32(rt, renderer.render(xy, score, [N, M, T, V]));
  const C = V + 2, plane = T * S * S;
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      const at = (n * M + m) * T * V;
      const one = renderHeatmaps(
        rt,
        rt.tensor(xy.slice(at * 2, (at + T * V) * 2), [1, 1, T, V, 2], "f32"),
        rt.tensor(score.slice(at, at + T * V), [1, 1, T, V], "f32"),
        spec,
      );
      const want = await readF32(rt, one);
      const got = split.subarray((n * M + m) * C * plane, (n * M + m + 1) * C * plane);
      assertClose(`sample ${n} person ${m}`, got, want, { atol: 0, rtol: 0 });
    }
  }
  assert(split.some((v) => v > 0.5), "drew something");
  renderer.dispose();
});
