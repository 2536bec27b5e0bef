// Finite-difference gradient checks: for a random direction u and weights w,
// d/de sum(w * f(x + e u)) at e = 0 by central differences must equal <grad, u>.
// Independent of PyTorch: catches a wrong rule even where a fixture would agree with it.
import * as ops from "../autograd/ops.ts";
import { backward, noGrad } from "../autograd/tape.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { gpuTest, randn, readF32 } from "./helpers.ts";

/** Checks every input's gradient of sum(w * f(inputs)) along a random direction. */
async function gradcheck(
  rt: Runtime,
  what: string,
  shapes: number[][],
  f: (xs: Tensor[]) => Tensor,
  o: { eps?: number; rtol?: number; seed?: number; scale?: number } = {},
) {
  const eps = o.eps ?? 1e-2, rtol = o.rtol ?? 2e-2;
  const base = shapes.map((s, i) =>
    randn(s.reduce((a, b) => a * b, 1), (o.seed ?? 7) + i, o.scale ?? 1)
  );
  const outShape = noGrad(() =>
    rt.tidy(() => f(shapes.map((s, i) => rt.tensor(base[i], s))).shape)
  );
  const w = randn(outShape.reduce((a, b) => a * b, 1), 99);
  const objective = async (xs: Float32Array[]) => {
    const y = await rt.tidy(() =>
      noGrad(() => {
        const out = f(shapes.map((s, i) => rt.tensor(xs[i], s)));
        return ops.sum(ops.mul(out, rt.tensor(w, out.shape)), [...out.shape.keys()]);
      })
    );
    const v = (await readF32(rt, y))[0];
    rt.dispose(y);
    return v;
  };
  // analytic gradients
  const grads: Float32Array[] = [];
  const held = rt.tidy(() => {
    const xs = shapes.map((s, i) => {
      const t = rt.tensor(base[i], s);
      t.requiresGrad = true;
      return t;
    });
    const out = f(xs);
    backward(out, rt.tensor(w, out.shape));
    return xs.map((x) => x.grad!);
  });
  for (const g of held) grads.push(await readF32(rt, g));
  for (const g of held) rt.dispose(g);
  for (let i = 0; i < shapes.length; i++) {
    const u = randn(base[i].length, 1000 + i);
    const plus = base.map((b, j) => (j === i ? b.map((v, k) => v + eps * u[k]) : b));
    const minus = base.map((b, j) => (j === i ? b.map((v, k) => v - eps * u[k]) : b));
    const numeric = ((await objective(plus)) - (await objective(minus))) / (2 * eps);
    let analytic = 0;
    for (let k = 0; k < u.length; k++) analytic += grads[i][k] * u[k];
    const err = Math.abs(numeric - analytic) / Math.max(1, Math.abs(numeric));
    if (!(err <= rtol)) {
      throw new Error(
        `${what}: input ${i} directional derivative ${analytic.toFixed(5)} (analytic) vs ${
          numeric.toFixed(5)
        } (finite differences), relative error ${err.toExponential(2)} > ${rtol}`,
      );
    }
  }
}

gpuTest(
  "gradcheck: matmul (batched, transposed, odd shapes)",
  (rt) =>
    gradcheck(rt, "matmul", [[2, 9, 5], [2, 7, 5]], ([a, b]) => ops.matmul(a, b, false, true)),
);

gpuTest(
  "gradcheck: linear + gelu epilogue",
  (rt) =>
    gradcheck(rt, "linear", [[3, 11], [6, 11], [6]], ([x, w, b]) => ops.linear(x, w, b, "gelu")),
);

gpuTest(
  "gradcheck: layer norm",
  (rt) => gradcheck(rt, "layerNorm", [[4, 13], [13], [13]], ([x, g, b]) => ops.layerNorm(x, g, b)),
);

for (const impl of ["fused", "dense"] as const) {
  gpuTest(
    `gradcheck: attention with mask (${impl})`,
    (rt) =>
      gradcheck(rt, "attention", [[2, 7, 2, 4], [2, 9, 2, 4], [2, 9, 2, 4]], ([q, k, v]) => {
        const mask = rt.tensor(randn(7 * 9, 5), [7, 9]);
        return ops.attention(q, k, v, { mask, impl });
      }),
  );

  gpuTest(
    `gradcheck: packed attention, qkv projection layout (${impl})`,
    (rt) =>
      gradcheck(
        rt,
        "attentionPacked",
        [[2, 5, 3, 2, 4]],
        ([qkv]) => ops.attentionPacked(qkv, { impl }),
      ),
  );
}

gpuTest(
  "gradcheck: softmax, tanh, broadcast div",
  (rt) =>
    gradcheck(rt, "mixed", [[3, 6], [6]], ([x, y]) =>
      ops.softmax(
        ops.div(ops.tanh(x), ops.add(ops.mul(y, y), rt.tensor([1, 1, 1, 1, 1, 1], [6]))),
      )),
);

gpuTest(
  "gradcheck: cross-entropy with smoothing",
  (rt) =>
    gradcheck(
      rt,
      "crossEntropy",
      [[5, 7]],
      ([x]) => ops.crossEntropy(x, rt.tensor([0, 3, 6, 2, 2], [5], "i32"), 0.1),
    ),
);

gpuTest(
  "gradcheck: tubelet embedding (patchify + linear)",
  (rt) =>
    gradcheck(
      rt,
      "tubelet",
      [[1, 2, 4, 4, 6], [3, 2 * 2 * 2 * 3], [3]],
      ([x, w, b]) => ops.linear(ops.patchify(x, [2, 2, 3]), w, b),
    ),
);

gpuTest(
  "gradcheck: concat, narrow, permute, mean",
  (rt) =>
    gradcheck(
      rt,
      "shape ops",
      [[2, 3, 4], [2, 2, 4]],
      ([a, b]) => ops.mean(ops.permute(ops.narrow(ops.concat([a, b], 1), 1, 1, 3), [2, 0, 1]), [1]),
    ),
);

gpuTest(
  "gradcheck: MotionBERT's pretraining loss (joint distances, velocities; odd shapes)",
  async (rt) => {
    const { motionLoss } = await import("../training/motion_loss.ts");
    await gradcheck(rt, "motionLoss", [[2, 5, 3, 3], [2, 5, 3, 3]], ([p, t]) => motionLoss(p, t));
  },
);
