// End to end: a tiny run trains, checkpoints, resumes bit-exactly, evaluates; each family's
// tiny preset overfits a handful of samples; bad configurations are refused by flag.
import { synthMeta, synthRecords } from "../data/importers/synth.ts";
import { writeSkeletonArrow } from "../data/schema.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { type Layer, validateLayer } from "../training/experiment.ts";
import { readRunConfig, runConfigText } from "../training/experiment_file.ts";
import { train } from "../training/trainer.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { scalarLines } from "./tfevents_reader.ts";
import { gpuTest } from "./helpers.ts";
import { tiny, tinyData, tinyTest } from "./tiny.ts";

gpuTest(
  "train: many test views are evaluated in passes no larger than a training batch",
  async (rt) => {
    const { SkeletonFile } = await import("../data/schema.ts");
    const { TEST_MODE } = await import("../data/batches.ts");
    const { buildModel } = await import("../models/presets.ts");
    const { loadCheckpoint } = await import("../io/checkpoint.ts");
    const { evaluate } = await import("../training/evaluate.ts");
    const { inputSpecOf, modelConfigFor } = await import("../training/setup.ts");
    const { samplesPerPass } = await import("../data/batches.ts");
    const test = (clips: number, flipTest: boolean) => ({ ...TEST_MODE, clips, flipTest });
    assertEquals(samplesPerPass(32, test(10, true)), 1); // 640 rows needed 160 MiB on lavapipe
    assertEquals(samplesPerPass(32, test(2, true)), 8);
    assertEquals(samplesPerPass(32, test(1, false)), 32);
    assertEquals(samplesPerPass(8, test(3, true)), 1);
    const dir = await Deno.makeTempDir();
    const data = await tinyData(dir);
    // 8 rows per training step; 3 clips x 2 flips = 6 views per sample: one sample per pass.
    const cfg = tiny(data, `${dir}/run`, {
      run: { epochs: 1 },
      eval: { clips: 3, flip: true },
    });
    const s = await train(rt, cfg, false);
    assertEquals([s.final!.samples, s.final!.views], [16, 6]);
    // The same checkpoint scored 16 samples (96 rows) at a time gives the same result.
    const file = await SkeletonFile.open(data);
    try {
      const model = buildModel(rt, modelConfigFor(cfg, file), cfg.run.seed);
      await loadCheckpoint(rt, `${dir}/run/last.safetensors`, model); // the final evaluation's
      const mode = { ...TEST_MODE, clips: 3, flipTest: true };
      const spec = inputSpecOf(cfg);
      const whole = await evaluate(rt, model, file, file.split("val"), spec, mode, 96);
      assertEquals([whole.top1, whole.confusion], [s.final!.top1, s.final!.confusion]);
      // 4 rows per pass: each sample's 6 views are split over two passes (as a study-sized
      // volume's 20 views are on a 128 MiB adapter), with the same result.
      const split = await evaluate(rt, model, file, file.split("val"), spec, mode, 4);
      assertEquals([split.top1, split.confusion], [s.final!.top1, s.final!.confusion]);
    } finally {
      await file.close();
    }
  },
);

tinyTest(
  "train: a tiny run writes config, metrics, checkpoints and a summary",
  async (rt, { dir, data }) => {
    const s = await train(rt, tiny(data, `${dir}/run`), false);
    assertEquals(s.epochs, 2);
    assert(s.final!.samples === 16, `val samples ${s.final!.samples}`);
    assert(s.final!.top1 >= 0 && s.final!.top1 <= 1 && s.final!.confusion.length === 16);
    const lines = (await Deno.readTextFile(`${dir}/run/metrics.jsonl`)).trim().split("\n").map((
      l,
    ) => JSON.parse(l));
    assertEquals(lines.map((l) => l.epoch), [1, 2]);
    assert(lines.every((l) => Number.isFinite(l.trainLoss) && l.lr > 0), "metrics per epoch");
    for (const f of ["config.json", "last.safetensors", "best.safetensors", "summary.json"]) {
      await Deno.stat(`${dir}/run/${f}`);
    }
    const ck = await readSafetensors(`${dir}/run/last.safetensors`);
    assertEquals(ck.metadata.preset, "vanilla-tiny");
    assert([...ck.tensors.keys()].some((k) => k.startsWith("optim.")), "optimiser state saved");
    await Deno.remove(dir, { recursive: true });
  },
);

tinyTest(
  "train: an interrupted run resumes to bit-identical weights, replayed or eager",
  async (rt, { dir, data }) => {
    // Two micro-batches of 8 per step (the shapes of the other runs here, so no new kernels):
    // steps are captured with and without the update. The uninterrupted run records every
    // step eagerly, the interrupted and resumed one replays: bit-identical weights prove both
    // the resume and the replay.
    const o = {
      run: { epochs: 2 },
      optim: { batchSize: 16, accumulate: 2 },
      augment: { rotation: 5, noise: 0.01, shift: 1 },
    };
    rt.replaySteps = false;
    try {
      await train(rt, tiny(data, `${dir}/a`, o), false);
    } finally {
      rt.replaySteps = true;
    }
    // Stop in epoch 2 (after 3 of 4 steps), then resume.
    let micro = 0;
    const stopped = await train(rt, tiny(data, `${dir}/b`, o), false, {
      progress: () => micro++,
      shouldStop: () => micro === 6,
    });
    assert(stopped.interrupted, "the run stopped");
    await train(rt, tiny(data, `${dir}/b`, o), true);
    // The resumed epoch's speed counts only what this process trained: 2 micro-batches of 8
    // (it once counted the 48 samples seen before the stop too).
    const lines = (await Deno.readTextFile(`${dir}/b/metrics.jsonl`)).trim().split("\n");
    const m2 = JSON.parse(lines[1]);
    assertEquals([lines.length, Math.round(m2.samplesPerSec * m2.seconds)], [2, 16]);
    // TensorBoard: the resumed run's curves are the uninterrupted run's, each point once
    // (the interrupted epoch's loss per interval carried across the stop)
    assertEquals(await scalarLines(`${dir}/b`), await scalarLines(`${dir}/a`));
    const a = await readSafetensors(`${dir}/a/last.safetensors`),
      b = await readSafetensors(`${dir}/b/last.safetensors`);
    assertEquals([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort());
    for (const [k, t] of a.tensors) {
      const u = b.tensors.get(k)!;
      const i = (t.data as Float32Array).findIndex((v, j) => !Object.is(v, u.data[j]));
      assert(i < 0, `${k}[${i}]: eager ${t.data[i]} vs resumed and replayed ${u.data[i]}`);
    }
  },
);

for (const model of ["vanilla-tiny", "vivit-m1-tiny", "vivit-m2-tiny", "motionbert-tiny"]) {
  gpuTest(`train: ${model} overfits a handful of samples to 100% training accuracy`, async (rt) => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/few.arrow`;
    // 4 samples of 4 different actions, one subject; train and evaluate on the same ones.
    const recs = [...synthRecords({ seed: 4, subjects: 2, trainSubjects: 1, repetitions: 1 })]
      .filter((r) => r.subject === 1 && r.label % 4 === 0);
    await writeSkeletonArrow(path, synthMeta(), recs);
    const s = await train(
      rt,
      tiny(path, `${dir}/run`, {
        model: { preset: model, tubelet: [4, 8, 8] },
        data: { split: "train:train" },
        run: { epochs: 40 },
        optim: { batchSize: 4, lr: 3e-3, weightDecay: 0, labelSmoothing: 0 },
        schedule: { kind: "constant" },
        augment: { flip: 0 },
        input: { clipLen: 8, size: 16 },
        // the question is whether it can fit them: its best epoch (scored on the same samples)
        eval: { checkpoint: "best" },
      }),
      false,
    );
    // Scored on test views (a centre crop at the training scale). ViViT model 2 at 16 x 16 has
    // 2 x 2 tubelets per frame: it fits the 4 random-crop training views, but one sample's test
    // view stays wrong (75%, also after 60 steps; 100% with the old whole-canvas test view).
    const want = model === "vivit-m2-tiny" ? 0.75 : 1;
    assert(
      s.final!.top1 >= want,
      `${model}: training accuracy ${(s.final!.top1 * 100).toFixed(0)}% after 40 steps`,
    );
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("train: invalid values are refused before any work, naming the path", () => {
  const bad = (layer: Layer) => assertThrows(() => tiny("x.arrow", "out", layer), Error).message;
  assert(bad({ optim: { lr: -1 } }).startsWith("optim.lr:"), bad({ optim: { lr: -1 } }));
  const half = bad({ optim: { batchSize: 2.5 } });
  assert(half.startsWith("optim.batchSize:"), half);
  const video = bad({ input: { kind: "video" as "heatmap" } });
  assert(video.startsWith("input.kind:"), video);
  const e4 = assertThrows(() => validateLayer({ optim: { bogus: 1 } }), Error);
  assert(e4.message.includes("optim.bogus"), e4.message);
});

tinyTest(
  "train: a non-finite loss stops the run with a message and keeps the last good checkpoint",
  async (rt, { dir, data }) => {
    // One good epoch, then a learning rate that blows the weights up.
    await train(rt, tiny(data, `${dir}/run`, { run: { epochs: 1 } }), false);
    const good = await Deno.readFile(`${dir}/run/last.safetensors`);
    const blowUp: Layer = {
      run: { epochs: 2 },
      optim: { optimizer: "sgd", lr: 1e30, clipNorm: 0 },
      schedule: { kind: "constant" },
    };
    const { experiment, origins, record } = await readRunConfig(`${dir}/run`);
    await Deno.writeTextFile(
      `${dir}/run/config.json`,
      runConfigText(tiny(data, experiment.run.out!, blowUp), origins, record),
    );
    let message = "";
    try {
      await train(rt, tiny(data, `${dir}/run`, blowUp), true);
    } catch (e) {
      message = (e as Error).message;
    }
    assert(
      /loss became (NaN|Infinity|-Infinity)/.test(message) &&
        message.includes("last good checkpoint"),
      message,
    );
    // the message names a file that exists (a first-epoch NaN once named a missing one)
    const named = message.match(/checkpoint is (\S+\.safetensors)/)?.[1];
    assert(named && (await Deno.stat(named)).isFile, `named checkpoint ${named}`);
    const after = await Deno.readFile(`${dir}/run/last.safetensors`);
    assert(
      after.length === good.length && after.every((b, i) => b === good[i]),
      "the last good checkpoint is kept unchanged",
    );
  },
);
