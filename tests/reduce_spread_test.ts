// Reductions spread over many workgroups (what GPUs get: interleaved chunks, a second pass
// split again when long; layer-norm parameter gradients over up to 1024 row chunks), forced
// here on the software adapter and checked against plain sums and the unspread kernels.
import { reduce } from "../kernels/reduce.ts";
import { layerNormBackward, layerNormForward } from "../kernels/layernorm.ts";
import { assertClose, gpuTest, randn, readF32 } from "./helpers.ts";

gpuTest(
  "reduce spread: long sums, means and sums of squares, keepDims and accumulate",
  async (rt) => {
    const n = 300_001, xs = randn(n, 5), ys = randn(3 * 20_000, 6);
    const sum = xs.reduce((a, b) => a + b, 0), sq = xs.reduce((a, b) => a + b * b, 0);
    const rows = [0, 1, 2].map((r) =>
      ys.slice(r * 20_000, (r + 1) * 20_000).reduce((a, b) => a + b)
    );
    for (const spread of [true, false]) {
      rt.spreadReductions = spread;
      try {
        const held = rt.tidy(() => {
          const x = rt.tensor(xs, [n]), y = rt.tensor(ys, [3, 20_000]);
          const acc = rt.tensor([1.5], [1]);
          reduce(rt, x, [0], "sum", { out: acc, accumulate: true });
          return {
            sum: reduce(rt, x, [0], "sum"),
            mean: reduce(rt, x, [0], "mean", { keepDims: true }),
            sq: reduce(rt, x, [0], "sumsq"),
            rows: reduce(rt, y, [1], "sum", { keepDims: true }),
            acc,
          };
        });
        const tol = { atol: 2e-2, rtol: 1e-5 };
        const what = spread ? "spread" : "contiguous";
        assertClose(`${what} sum`, await readF32(rt, held.sum), [sum], tol);
        assertClose(`${what} mean`, await readF32(rt, held.mean), [sum / n], {
          atol: 1e-7,
          rtol: 1e-5,
        });
        assertClose(`${what} sumsq`, await readF32(rt, held.sq), [sq], { atol: 0.1, rtol: 1e-5 });
        assertClose(`${what} rows`, await readF32(rt, held.rows), rows, tol);
        assertClose(`${what} accumulate`, await readF32(rt, held.acc), [sum + 1.5], tol);
        if (held.rows.shape.join() !== "3,1" || held.mean.shape.join() !== "1") {
          throw new Error(`${what}: shapes ${held.rows.shape} and ${held.mean.shape}`);
        }
        for (const t of Object.values(held)) rt.dispose(t);
      } finally {
        rt.spreadReductions = "auto";
      }
    }
  },
);

gpuTest(
  "layer norm parameter gradients over 1024 row chunks match the 64-chunk kernel",
  async (rt) => {
    const rows = 5000, c = 12;
    const grads = [];
    for (const spread of [true, false]) {
      rt.spreadReductions = spread;
      try {
        const held = rt.tidy(() => {
          const x = rt.tensor(randn(rows * c, 7), [rows, c]),
            dy = rt.tensor(randn(rows * c, 8), [rows, c]);
          const g = rt.tensor(randn(c, 9), [c]), b = rt.tensor(randn(c, 10), [c]);
          const f = layerNormForward(rt, x, g, b, 1e-5);
          const r = layerNormBackward(rt, dy, x, g, f.mean, f.rstd);
          return { dgamma: r.dgamma, dbeta: r.dbeta }; // two views of one buffer
        });
        grads.push([await readF32(rt, held.dgamma), await readF32(rt, held.dbeta)]);
        for (const t of Object.values(held)) rt.dispose(t);
      } finally {
        rt.spreadReductions = "auto";
      }
    }
    assertClose("dgamma", grads[0][0], grads[1][0], { atol: 1e-3, rtol: 1e-4 });
    assertClose("dbeta", grads[0][1], grads[1][1], { atol: 1e-3, rtol: 1e-4 });
  },
);
