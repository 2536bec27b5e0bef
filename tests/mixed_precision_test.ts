// Mixed precision (--f16): f16 activations with f32 accumulation and f32 master weights.
// Each family's logits and weight gradients against the same model in f32, and a tiny run.
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import { synthMeta, synthRecords } from "../data/importers/synth.ts";
import { writeSkeletonArrow } from "../data/schema.ts";
import { buildModel, presetByName } from "../models/presets.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { tiny } from "./tiny.ts";
import { train } from "../training/trainer.ts";
import { assert, assertEquals } from "./assert.ts";
import { gpuTest, lacks } from "./helpers.ts";

const noF16 = await lacks("shader-f16");

async function logitsAndGrads(rt: Runtime, name: string, dtype: "f32" | "f16") {
  rt.computeDtype = dtype;
  try {
    // The overfitting runs' shapes (train_test.ts: 16 classes, 8 frames of 16 x 16, batch 4),
    // so that the f32 half compiles no kernels of its own on a cold CI cache.
    const p = presetByName(name).config;
    const c = { ...p, classes: 16, input: { ...p.input, frames: 8, size: 16 } };
    const model = buildModel(rt, c, 7);
    model.training = false; // no dropout: the two runs see the same function
    // Zero-initialised heads (ViViT) would stop every gradient below them: small weights.
    for (const [k, p] of model.namedParams()) {
      if (!k.startsWith("head") || p.tensor.rank !== 2) continue;
      rt.write(
        p.tensor,
        Float32Array.from({ length: p.tensor.size }, (_, j) => Math.sin(j) * 0.05),
      );
    }
    const i = c.input, shape = [4, i.channels, i.frames, i.size, i.size];
    const n = shape.reduce((a, b) => a * b, 1);
    const x = rt.tensor(Float32Array.from({ length: n }, (_, k) => ((k * 37) % 101) / 101), shape);
    const logits = ops.cast(model.forward(x), "f32");
    backward(ops.crossEntropy(logits, rt.tensor([1, 3, 8, 12], [4], "i32")));
    const params = [...model.namedParams()].map(([k, p]) => [k, p.tensor.grad!] as const);
    const got = await rt.readMany([logits, ...params.map(([, g]) => g)]);
    return { logits: got[0], grads: new Map(params.map(([k], j) => [k, got[j + 1]])) };
  } finally {
    rt.computeDtype = "f32";
  }
}

// ViViT model 2 is built from the same ops as model 1 (tubelets, encoder blocks); leaving it
// out saves a minute of shader compilation on a cold CI cache.
for (const name of ["vanilla-tiny", "vivit-m1-tiny", "motionbert-tiny"]) {
  gpuTest(`f16: ${name} logits and weight gradients match f32`, async (rt) => {
    const a = await logitsAndGrads(rt, name, "f32"), b = await logitsAndGrads(rt, name, "f16");
    // f16 keeps 11 significant bits: relative errors of ~1e-3 per op, compounding over the
    // depth (measured: logits 1e-3 to 4e-2 of the largest logit, gradients below 1e-2).
    const rel = (x: ArrayLike<number>, y: ArrayLike<number>) => {
      let d = 0, m = 1e-6;
      for (let k = 0; k < x.length; k++) {
        d = Math.max(d, Math.abs(x[k] - y[k]));
        m = Math.max(m, Math.abs(x[k]));
      }
      return d / m;
    };
    assert(rel(a.logits, b.logits) < 5e-2, `logits: relative error ${rel(a.logits, b.logits)}`);
    // Gradients: the error of all weight gradients together, relative to their norm (a
    // single tensor whose gradient nearly cancels, such as a bias before batch norm, is
    // dominated by rounding that is tiny on the model's scale).
    let d2 = 0, g2 = 0, nonzero = 0;
    for (const [k, g] of a.grads) {
      const h = b.grads.get(k)!;
      if (g.some((v) => v !== 0)) nonzero++;
      for (let j = 0; j < g.length; j++) {
        d2 += (g[j] - h[j]) ** 2;
        g2 += g[j] ** 2;
      }
    }
    const gradErr = Math.sqrt(d2 / g2);
    assert(nonzero > a.grads.size / 2, `${name}: only ${nonzero} nonzero gradients`);
    assert(gradErr < 2e-2, `${name}: gradients differ by ${gradErr} (relative)`);
    console.log(
      `${name}: logits ${rel(a.logits, b.logits).toExponential(1)}, gradients ${
        gradErr.toExponential(1)
      } (relative)`,
    );
  }, { skip: noF16 });
}

gpuTest("f16: a tiny --f16 run trains, reports its loss scale and no skipped steps", async (rt) => {
  const dir = await Deno.makeTempDir();
  const data = `${dir}/tiny.arrow`;
  await writeSkeletonArrow(
    data,
    synthMeta(),
    synthRecords({ seed: 3, subjects: 3, trainSubjects: 2, repetitions: 1 }),
  );
  const cfg = tiny(data, `${dir}/run`, {
    optim: { batchSize: 4 }, // the comparisons' shapes above: their f16 kernels are compiled already
    run: { epochs: 1, f16: true },
  });
  const s = await train(rt, cfg, false);
  assertEquals(rt.computeDtype, "f16");
  rt.computeDtype = "f32";
  const lines = (await Deno.readTextFile(`${dir}/run/metrics.jsonl`)).trim().split("\n");
  const last = JSON.parse(lines.at(-1)!);
  assertEquals([last.lossScale, last.skippedSteps], [1024, 0]);
  assert(Number.isFinite(last.trainLoss) && s.final!.top1 >= 0, "a finite loss and an accuracy");
  await Deno.remove(dir, { recursive: true });
}, { skip: noF16 });
