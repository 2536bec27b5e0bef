// AdamW and SGD (Nesterov) against torch.optim over three steps on fixed gradients, and
// global-norm clipping against its definition.
import type { Param } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { DEFAULT_OPTIMIZER, Optimizer, type OptimizerConfig } from "../training/optimizer.ts";
import { assertClose, fixture, gpuTest, readF32 } from "./helpers.ts";

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
  assertClose("reported norm", (await readF32(rt, opt.gradScale)).slice(1), [5], {
    atol: 1e-5,
    rtol: 1e-6,
  });
});
