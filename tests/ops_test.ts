// Every op, forward and backward, against PyTorch (float64) fixtures from
// tests/fixtures/make_fixtures.py. Tolerances are per op for f32 storage and accumulation.
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { softmaxBackward, softmaxForward } from "../kernels/softmax.ts";
import { assertClose, fixture, gpuTest, randn, readF32, type Tolerance } from "./helpers.ts";

/** Tolerances (f32): absolute + relative to the float64 reference. */
const TOL: Record<string, Tolerance> = {
  matmul: { atol: 1e-4, rtol: 1e-4 },
  linear: { atol: 1e-4, rtol: 1e-4 },
  layernorm: { atol: 2e-4, rtol: 1e-4 },
  softmax: { atol: 1e-5, rtol: 1e-4 },
  attention: { atol: 1e-4, rtol: 1e-4 },
  xent: { atol: 1e-5, rtol: 1e-4 },
  elementwise: { atol: 1e-5, rtol: 1e-5 },
  reduce: { atol: 1e-4, rtol: 1e-5 },
  tubelet: { atol: 1e-4, rtol: 1e-4 },
  block: { atol: 2e-4, rtol: 2e-4 },
};

/**
 * Runs one fixture case: uploads `grads` inputs as leaves needing gradients and `consts` as
 * constants, builds the output, backpropagates the fixture's dout, and compares the output
 * and every gradient.
 */
async function checkCase(
  rt: Runtime,
  name: string,
  tol: Tolerance,
  grads: string[],
  build: (t: Record<string, Tensor>, params: Record<string, unknown>) => Tensor,
  consts: string[] = [],
): Promise<void> {
  const f = await fixture(name);
  const held: Tensor[] = [];
  const res = rt.tidy(() => {
    const t: Record<string, Tensor> = {};
    for (const g of grads) t[g] = f.tensor(rt, g, true);
    for (const c of consts) t[c] = f.tensor(rt, c);
    const out = build(t, f.params);
    backward(out, f.tensor(rt, "dout").view(out.shape));
    const gs = grads.map((g) => t[g].grad!);
    held.push(out, ...gs);
    return { out, gs };
  });
  try {
    assertClose(`${name} forward`, await readF32(rt, res.out), f.data("out"), tol);
    for (let i = 0; i < grads.length; i++) {
      assertClose(
        `${name} d${grads[i]}`,
        await readF32(rt, res.gs[i]),
        f.data(`d${grads[i]}`),
        tol,
      );
    }
  } finally {
    for (const h of held) rt.dispose(h);
  }
}

/**
 * Runs one fixture case: uploads `grads` inputs as leaves needing gradients and `consts` as
 * constants, builds the output, backpropagates the fixture's dout and compares out and
 * every gradient.
 */

for (let i = 0; i < 8; i++) {
  gpuTest(
    `matmul${i} forward/backward vs PyTorch`,
    (rt) =>
      checkCase(
        rt,
        `matmul${i}`,
        TOL.matmul,
        ["a", "b"],
        (t, p) => ops.matmul(t.a, t.b, p.transA as boolean, p.transB as boolean),
      ),
  );
}

for (let i = 0; i < 4; i++) {
  gpuTest(
    `linear${i} (bias + activation epilogue) vs PyTorch`,
    (rt) =>
      checkCase(
        rt,
        `linear${i}`,
        TOL.linear,
        ["x", "w", "b"],
        (t, p) => ops.linear(t.x, t.w, t.b, p.act as "gelu" | "relu" | "none"),
      ),
  );
}

for (let i = 0; i < 4; i++) {
  gpuTest(
    `layernorm${i} vs PyTorch`,
    (rt) =>
      checkCase(
        rt,
        `layernorm${i}`,
        TOL.layernorm,
        ["x", "g", "b"],
        (t, p) => ops.layerNorm(t.x, t.g, t.b, p.eps as number),
      ),
  );
}

for (let i = 0; i < 3; i++) {
  gpuTest(
    `softmax${i} vs PyTorch`,
    (rt) => checkCase(rt, `softmax${i}`, TOL.softmax, ["x"], (t) => ops.softmax(t.x)),
  );
}

// Both implementations: fused (online softmax) and dense (matmuls around a stored softmax).
for (const impl of ["fused", "dense"] as const) {
  for (let i = 0; i < 5; i++) {
    gpuTest(`attention${i} (${impl}, mask) vs PyTorch`, async (rt) => {
      const f = await fixture(`attention${i}`);
      const consts = f.has("mask") ? ["mask"] : [];
      await checkCase(
        rt,
        `attention${i}`,
        TOL.attention,
        ["q", "k", "v"],
        (t) => ops.attention(t.q, t.k, t.v, { mask: t.mask, impl }),
        consts,
      );
    });
  }
}

for (let i = 0; i < 3; i++) {
  gpuTest(
    `cross-entropy${i} with label smoothing vs PyTorch`,
    (rt) =>
      checkCase(
        rt,
        `xent${i}`,
        TOL.xent,
        ["x"],
        (t, p) => ops.crossEntropy(t.x, t.labels, p.smoothing as number),
        ["labels"],
      ),
  );
}

gpuTest("gelu, tanh vs PyTorch", async (rt) => {
  await checkCase(rt, "gelu0", TOL.elementwise, ["x"], (t) => ops.gelu(t.x));
  await checkCase(rt, "tanh0", TOL.elementwise, ["x"], (t) => ops.tanh(t.x));
});

gpuTest("broadcast add / mul / div vs PyTorch", async (rt) => {
  await checkCase(rt, "bcast_add0", TOL.elementwise, ["a", "b"], (t) => ops.add(t.a, t.b));
  await checkCase(rt, "bcast_mul0", TOL.elementwise, ["a", "b"], (t) => ops.mul(t.a, t.b));
  await checkCase(rt, "bcast_div0", TOL.elementwise, ["a", "b"], (t) => ops.div(t.a, t.b));
});

gpuTest("sum / mean over axes (incl. the two-pass split) vs PyTorch", async (rt) => {
  await checkCase(rt, "sum0", TOL.reduce, ["x"], (t, p) => ops.sum(t.x, p.axes as number[]));
  await checkCase(rt, "mean0", TOL.reduce, ["x"], (t, p) => ops.mean(t.x, p.axes as number[]));
});

gpuTest("permute, concat, narrow vs PyTorch", async (rt) => {
  await checkCase(
    rt,
    "permute0",
    TOL.elementwise,
    ["x"],
    (t, p) => ops.permute(t.x, p.axes as number[]),
  );
  await checkCase(
    rt,
    "concat0",
    TOL.elementwise,
    ["a", "b", "c"],
    (t, p) => ops.concat([t.a, t.b, t.c], p.axis as number),
  );
  await checkCase(
    rt,
    "narrow0",
    TOL.elementwise,
    ["x"],
    (t, p) => ops.narrow(t.x, p.axis as number, p.start as number, p.len as number),
  );
});

for (let i = 0; i < 3; i++) {
  gpuTest(
    `tubelet embedding${i} (conv3d, kernel = stride) vs PyTorch`,
    (rt) =>
      checkCase(rt, `tubelet${i}`, TOL.tubelet, ["x", "w", "b"], (t, p) => {
        const k = p.kernel as [number, number, number];
        return ops.linear(ops.patchify(t.x, k), t.w, t.b);
      }),
  );
}

gpuTest("pre-norm transformer block forward/backward vs PyTorch", (rt) => {
  const names = [
    "x",
    "ln1g",
    "ln1b",
    "wqkv",
    "bqkv",
    "wo",
    "bo",
    "ln2g",
    "ln2b",
    "w1",
    "b1",
    "w2",
    "b2",
  ];
  return checkCase(rt, "block0", TOL.block, names, (t, p) => {
    const heads = p.heads as number, eps = p.eps as number;
    const [b, l, c] = t.x.shape;
    const qkv = ops.linear(ops.layerNorm(t.x, t.ln1g, t.ln1b, eps), t.wqkv, t.bqkv)
      .view([b, l, 3, heads, c / heads]);
    const q = ops.narrow(qkv, 2, 0, 1).view([b, l, heads, c / heads]);
    const k = ops.narrow(qkv, 2, 1, 1).view([b, l, heads, c / heads]);
    const v = ops.narrow(qkv, 2, 2, 1).view([b, l, heads, c / heads]);
    const a = ops.reshape(ops.attention(q, k, v), [b, l, c]);
    const x1 = ops.add(t.x, ops.linear(a, t.wo, t.bo));
    const h = ops.linear(ops.layerNorm(x1, t.ln2g, t.ln2b, eps), t.w1, t.b1, "gelu");
    return ops.add(x1, ops.linear(h, t.w2, t.b2));
  });
});

gpuTest(
  "softmax on vec4 rows with a folded scale, and its backward, match the definition",
  async (rt) => {
    const rows = 6, c = 64, scale = 0.37;
    const xv = randn(rows * c, 11), dyv = randn(rows * c, 12);
    const held = rt.tidy(() => {
      const y = softmaxForward(rt, rt.tensor(xv, [rows, c]), scale);
      return { y, dx: softmaxBackward(rt, rt.tensor(dyv, [rows, c]), y, scale) };
    });
    const y = new Float64Array(rows * c), dx = new Float64Array(rows * c);
    for (let r = 0; r < rows; r++) {
      const row = [...xv.slice(r * c, (r + 1) * c)].map((v) => v * scale);
      const m = Math.max(...row), e = row.map((v) => Math.exp(v - m));
      const z = e.reduce((a, b) => a + b, 0);
      let dot = 0;
      for (let j = 0; j < c; j++) {
        y[r * c + j] = e[j] / z;
        dot += dyv[r * c + j] * y[r * c + j];
      }
      for (let j = 0; j < c; j++) dx[r * c + j] = scale * y[r * c + j] * (dyv[r * c + j] - dot);
    }
    const tol = { atol: 1e-6, rtol: 1e-5 };
    assertClose("softmax(scale x)", await readF32(rt, held.y), y, tol);
    assertClose("its backward", await readF32(rt, held.dx), dx, tol);
  },
);
