// Dropout's counter-based RNG: the drop rate is p, kept values are scaled by 1/(1-p), the
// same (seed, salt) gives the same mask (the backward relies on it), others differ.
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import { assert, assertEquals } from "./assert.ts";
import { gpuTest, readF32 } from "./helpers.ts";

gpuTest("dropout: rate, scaling, determinism and a backward that reuses the mask", async (rt) => {
  const n = 40000, p = 0.3;
  const seed = rt.tensor([1234], [1], "i32", { persistent: true });
  const other = rt.tensor([1235], [1], "i32", { persistent: true });
  const res = rt.tidy(() => {
    const x = rt.tensor(new Float32Array(n).fill(1), [n]);
    x.requiresGrad = true;
    const y = ops.dropout(x, p, seed, 77);
    const again = ops.dropout(rt.tensor(new Float32Array(n).fill(1), [n]), p, seed, 77);
    const reseeded = ops.dropout(rt.tensor(new Float32Array(n).fill(1), [n]), p, other, 77);
    const salted = ops.dropout(rt.tensor(new Float32Array(n).fill(1), [n]), p, seed, 78);
    backward(y, rt.tensor(new Float32Array(n).fill(1), [n]));
    return { y, again, reseeded, salted, dx: x.grad! };
  });
  const y = await readF32(rt, res.y);
  const kept = y.filter((v) => v !== 0);
  const rate = 1 - kept.length / n;
  assert(Math.abs(rate - p) < 0.015, `drop rate ${rate} should be ~${p}`);
  assert(kept.every((v) => Math.abs(v - 1 / (1 - p)) < 1e-6), "kept values scaled by 1/(1-p)");
  assertEquals(
    Array.from(await readF32(rt, res.again)),
    Array.from(y),
    "same seed and salt, same mask",
  );
  const dx = await readF32(rt, res.dx);
  assert(dx.every((v, i) => v === y[i]), "backward applies the forward's mask");
  const r = await readF32(rt, res.reseeded), s = await readF32(rt, res.salted);
  const agree = (a: Float32Array) => a.filter((v, i) => (v === 0) === (y[i] === 0)).length / n;
  assert(
    agree(r) < 0.7 && agree(s) < 0.7,
    `other seeds/salts give independent masks (${agree(r)}, ${agree(s)})`,
  );
  // No correlation with the index: first and second halves drop alike.
  const half = (a: number, b: number) => y.slice(a, b).filter((v) => v === 0).length / (b - a);
  assert(Math.abs(half(0, n / 2) - half(n / 2, n)) < 0.02, "uniform over indices");
  for (const t of Object.values(res)) rt.dispose(t);
});
