// AdamW and SGD (Nesterov) against torch.optim over three steps on fixed gradients, and
// global-norm clipping against its definition.
import type { Param } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { DEFAULT_OPTIMIZER, Optimizer, type OptimizerConfig } from "../training/optimizer.ts";
import * as ops from "../autograd/ops.ts";
import { LOSS_SCALE_GROWTH } from "../kernels/optim.ts";
import { backward } from "../autograd/tape.ts";
import { assertClose, fixture, gpuTest, randn, readF32 } from "./helpers.ts";

async function run(rt: Runtime, name: string, cfg: OptimizerConfig, lr: number) {
  const f = await fixture(name);
  const p = rt.tensor(f.data("p0"), [37], "f32", { persistent: true });
  p.requiresGrad = true;
  p.grad = rt.tensor(new Float32Array(37), [37], "f32", { persistent: true });
  const params = new Map<string, Param>([["p", { tensor: p, noDecay: false }]]);
  const opt = new Optimizer(rt, params, cfg);
  for (let s = 0; s < 3; s++) {
    opt.beginStep(lr);
    rt.write(p.grad, f.data(`g${s}`));
    opt.step();
  }
  assertClose(`${name} after 3 steps`, await readF32(rt, p), f.data("p3"), {
    atol: 1e-6,
    rtol: 1e-5,
  });
  assertClose(`${name} zeroes grads`, await readF32(rt, p.grad), new Float32Array(37), {
    atol: 0,
    rtol: 0,
  });
}

gpuTest(
  "AdamW matches torch.optim.AdamW",
  (rt) =>
    run(rt, "adamw", { ...DEFAULT_OPTIMIZER, kind: "adamw", weightDecay: 0.05, clipNorm: 0 }, 1e-2),
);

gpuTest(
  "SGD with Nesterov momentum matches torch.optim.SGD",
  (rt) =>
    run(rt, "sgd", {
      ...DEFAULT_OPTIMIZER,
      kind: "sgd",
      momentum: 0.9,
      nesterov: true,
      weightDecay: 3e-4,
      clipNorm: 0,
    }, 0.1),
);

gpuTest("global-norm clipping scales gradients to the max norm", async (rt) => {
  const mk = (vals: number[]) => {
    const t = rt.tensor(vals, [vals.length], "f32", { persistent: true });
    t.requiresGrad = true;
    t.grad = rt.tensor(new Float32Array(vals.length), [vals.length], "f32", { persistent: true });
    return t;
  };
  const a = mk([0, 0, 0]), b = mk([0, 0]);
  const params = new Map<string, Param>([["a", { tensor: a, noDecay: true }], ["b", {
    tensor: b,
    noDecay: true,
  }]]);
  // SGD without momentum: p -= lr * clip * g, so the update reveals the clip coefficient.
  const opt = new Optimizer(rt, params, {
    ...DEFAULT_OPTIMIZER,
    kind: "sgd",
    momentum: 0,
    weightDecay: 0,
    clipNorm: 1,
  });
  opt.beginStep(1);
  rt.write(a.grad!, [3, 0, 0]);
  rt.write(b.grad!, [0, 4]); // global norm 5 -> coefficient 0.2
  opt.step();
  assertClose("clipped update a", await readF32(rt, a), [-0.6, 0, 0], { atol: 1e-6, rtol: 1e-5 });
  assertClose("clipped update b", await readF32(rt, b), [0, -0.8], { atol: 1e-6, rtol: 1e-5 });
  assertClose("reported norm", (await readF32(rt, opt.gradScale)).slice(1, 2), [5], {
    atol: 1e-5,
    rtol: 1e-6,
  });
});

gpuTest("AdamW vec4 path (size % 4 == 0) matches a plain TypeScript AdamW", async (rt) => {
  const n = 40, p0 = randn(n, 21), gs = [randn(n, 22), randn(n, 23)];
  const p = rt.tensor(p0, [n], "f32", { persistent: true });
  p.requiresGrad = true;
  p.grad = rt.tensor(new Float32Array(n), [n], "f32", { persistent: true });
  const opt = new Optimizer(rt, new Map([["p", { tensor: p, noDecay: false }]]), {
    ...DEFAULT_OPTIMIZER,
    weightDecay: 0.1,
    clipNorm: 0,
  });
  const ref = Float64Array.from(p0), m = new Float64Array(n), v = new Float64Array(n);
  const [lr, b1, b2, eps, wd] = [0.01, 0.9, 0.999, 1e-8, 0.1];
  gs.forEach((g, s) => {
    opt.beginStep(lr);
    rt.write(p.grad!, g);
    opt.step();
    for (let i = 0; i < n; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      ref[i] = ref[i] * (1 - lr * wd) -
        lr * (m[i] / (1 - b1 ** (s + 1))) / (Math.sqrt(v[i] / (1 - b2 ** (s + 1))) + eps);
    }
  });
  assertClose("adamw vec4", await readF32(rt, p), ref, { atol: 1e-6, rtol: 1e-5 });
});

gpuTest("parameters accumulate gradients in place over micro-batches (linear)", async (rt) => {
  const w = rt.tensor(randn(6 * 5, 31), [6, 5], "f32", { persistent: true });
  const b = rt.tensor(randn(6, 32), [6], "f32", { persistent: true });
  for (const t of [w, b]) {
    t.requiresGrad = true;
    t.grad = rt.tensor(new Float32Array(t.size), t.shape, "f32", { persistent: true });
  }
  const x = randn(7 * 5, 33);
  const once = async () => {
    rt.tidy(() => backward(ops.sum(ops.linear(rt.tensor(x, [7, 5]), w, b, "gelu"), [0, 1])));
    return [await readF32(rt, w.grad!), await readF32(rt, b.grad!)];
  };
  const [w1, b1] = await once();
  const [w2, b2] = await once();
  assertClose("dW accumulates", w2, w1.map((v) => 2 * v), { atol: 1e-5, rtol: 1e-5 });
  assertClose("db accumulates", b2, b1.map((v) => 2 * v), { atol: 1e-5, rtol: 1e-5 });
  // and equals the temporary-gradient path (a non-persistent leaf)
  const w3 = rt.tensor(await readF32(rt, w), [6, 5]), b3 = rt.tensor(await readF32(rt, b), [6]);
  w3.requiresGrad = b3.requiresGrad = true;
  const [gw, gb] = rt.tidy(() => {
    backward(ops.sum(ops.linear(rt.tensor(x, [7, 5]), w3, b3, "gelu"), [0, 1]));
    return [w3.grad!, b3.grad!];
  }, [w3, b3]);
  assertClose("direct = temporary (W)", w1, await readF32(rt, gw), { atol: 1e-6, rtol: 1e-6 });
  assertClose("direct = temporary (b)", b1, await readF32(rt, gb), { atol: 1e-6, rtol: 1e-6 });
});

gpuTest(
  "a step with non-finite gradients is skipped; under f16 the loss scale halves, then grows back",
  async (rt) => {
    for (const f16 of [false, true]) {
      rt.computeDtype = f16 ? "f16" : "f32";
      const p = rt.tensor([1, 2, 3, 4], [4], "f32", { persistent: true });
      p.requiresGrad = true;
      p.grad = rt.tensor(new Float32Array(4), [4], "f32", { persistent: true });
      const opt = new Optimizer(
        rt,
        new Map<string, Param>([["p", { tensor: p, noDecay: false }]]),
        { ...DEFAULT_OPTIMIZER, clipNorm: 1 },
      );
      rt.computeDtype = "f32";
      const scale0 = f16 ? 1024 : 1;
      assertClose("backward seed = loss scale", await readF32(rt, opt.lossSeed()), [scale0], {
        atol: 0,
        rtol: 0,
      });
      opt.beginStep(0.1);
      rt.write(p.grad, [1, Infinity, 0, 0]);
      opt.step();
      assertClose(`f16=${f16}: weights untouched`, await readF32(rt, p), [1, 2, 3, 4], {
        atol: 0,
        rtol: 0,
      });
      let s = await readF32(rt, opt.gradScale);
      assertClose(`f16=${f16}: skip flag, skipped count, scale`, [s[2], s[5], s[3]], [
        1,
        1,
        f16 ? scale0 / 2 : 1,
      ], { atol: 0, rtol: 0 });
      // A finite step: the gradient is divided by the loss scale before clipping and Adam.
      opt.beginStep(0.1);
      rt.write(p.grad, [0.5 * s[3], 0, 0, 0]);
      opt.step();
      s = await readF32(rt, opt.gradScale);
      assertClose(`f16=${f16}: unscaled norm, no skip`, [s[1], s[2]], [0.5, 0], {
        atol: 1e-6,
        rtol: 1e-6,
      });
      // The skipped step still counts for the bias corrections (the step count is the
      // host's; the GPU alone knows a step was skipped): t = 2 here.
      const mHat = 0.1 * 0.5 / (1 - 0.9 ** 2), vHat = 0.001 * 0.25 / (1 - 0.999 ** 2);
      const want = 1 * (1 - 0.1 * 0.05) - 0.1 * mHat / (Math.sqrt(vHat) + 1e-8);
      assertClose(`f16=${f16}: Adam step`, (await readF32(rt, p)).slice(0, 1), [want], {
        atol: 1e-5,
        rtol: 1e-5,
      });
      // LOSS_SCALE_GROWTH finite steps in a row double the scale.
      for (let k = 1; k < LOSS_SCALE_GROWTH; k++) {
        opt.beginStep(0);
        opt.step();
      }
      s = await readF32(rt, opt.gradScale);
      assertClose(`f16=${f16}: scale after ${LOSS_SCALE_GROWTH} finite steps`, [s[3]], [scale0], {
        atol: 0,
        rtol: 0,
      });
    }
  },
);
