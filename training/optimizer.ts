// The optimiser: AdamW or SGD (momentum, Nesterov) over a model's parameters, with
// global-norm clipping, all recorded into the step's command buffer. Hyper-parameters that
// change per step (learning rate, bias corrections) are written before the step is recorded
// (beginStep), so nothing waits on the GPU.
import { fill, map } from "../kernels/map.ts";
import {
  adamwStep,
  clipCoefficient,
  gradSumSquares,
  initialGradScale,
  sgdStep,
} from "../kernels/optim.ts";
import type { Param } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";

export interface OptimizerConfig {
  kind: "adamw" | "sgd";
  weightDecay: number;
  /** AdamW betas. */
  beta1: number;
  beta2: number;
  eps: number;
  /** SGD momentum and Nesterov. */
  momentum: number;
  nesterov: boolean;
  /** Global gradient-norm clip; 0 disables. */
  clipNorm: number;
}

export const DEFAULT_OPTIMIZER: OptimizerConfig = {
  kind: "adamw",
  weightDecay: 0.05,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  momentum: 0.9,
  nesterov: false,
  clipNorm: 1,
};

interface Slot {
  name: string;
  p: Param;
  state: Tensor[];
}

export class Optimizer {
  readonly slots: Slot[] = [];
  readonly hyper: Tensor; // f32[8], see kernels/optim.ts
  readonly gradScale: Tensor; // f32[8], see kernels/optim.ts: clip, norm, skip, loss scale
  readonly norms: Tensor; // f32[arenas]: sum of squares of each gradient arena
  /** The gradients, packed: each parameter's .grad is a view into one of these, so zeroing
   * and the global norm are one dispatch per arena instead of one per tensor. */
  readonly gradArenas: Tensor[] = [];
  /** Completed update steps (bias correction uses t + 1). */
  t = 0;

  /** Dynamic loss scaling (mixed precision): set when the runtime computes in f16. */
  readonly dynamicScale: boolean;

  constructor(readonly rt: Runtime, params: Map<string, Param>, readonly cfg: OptimizerConfig) {
    this.dynamicScale = rt.computeDtype === "f16";
    for (const [name, p] of params) {
      const n = p.tensor.size;
      const k = cfg.kind === "adamw" ? 2 : 1;
      const state = Array.from(
        { length: k },
        (_, i) =>
          rt.tensor(new Float32Array(n), p.tensor.shape, "f32", {
            persistent: true,
            name: `${name}.${cfg.kind === "adamw" ? ["m", "v"][i] : "momentum"}`,
          }),
      );
      this.slots.push({ name, p, state });
    }
    this.hyper = rt.tensor(new Float32Array(8), [8], "f32", { persistent: true, name: "hyper" });
    this.gradScale = rt.tensor(initialGradScale(this.dynamicScale), [8], "f32", {
      persistent: true,
      name: "gradScale",
    });
    this.#packGradients();
    const k = Math.max(1, this.gradArenas.length);
    this.norms = rt.tensor(new Float32Array(k), [k], "f32", {
      persistent: true,
      name: "gradNorms",
    });
  }

  /**
   * Moves every parameter's gradient into arenas of at most the adapter's binding size (a
   * 94M-parameter model needs several on a 128 MiB limit), each view 4-aligned for the vec4
   * kernels. The padding stays zero, so it adds nothing to the norm.
   */
  #packGradients(): void {
    const rt = this.rt;
    const limit = Math.floor(
      (rt.device.limits.maxStorageBufferBindingSize ?? 128 * 1024 * 1024) / 4,
    );
    const groups: { slots: Slot[]; size: number }[] = [];
    for (const s of this.slots) {
      const n = Math.ceil(s.p.tensor.size / 4) * 4;
      let g = groups.at(-1);
      if (!g || g.size + n > limit) groups.push(g = { slots: [], size: 0 });
      g.slots.push(s);
      g.size += n;
    }
    for (const [i, g] of groups.entries()) {
      const arena = rt.tensor(new Float32Array(g.size), [g.size], "f32", {
        persistent: true,
        name: `grads.${i}`,
      });
      let at = 0;
      for (const s of g.slots) {
        const p = s.p.tensor;
        if (p.grad) rt.dispose(p.grad);
        p.grad = arena.slice0(at, at + p.size).view(p.shape);
        at += Math.ceil(p.size / 4) * 4;
      }
      this.gradArenas.push(arena);
    }
  }

  /** Writes this step's hyper-parameters; call before recording the step. */
  beginStep(lr: number): void {
    const c = this.cfg, t = this.t + 1;
    const first = c.kind === "adamw" ? c.beta1 : c.momentum;
    this.rt.write(this.hyper, [
      lr,
      first,
      c.beta2,
      c.eps,
      c.weightDecay,
      1 - c.beta1 ** t,
      1 - c.beta2 ** t,
      0,
    ]);
  }

  /** Records clipping, the update of every parameter, and zeroing of the gradients. */
  step(): void {
    const rt = this.rt;
    this.gradArenas.forEach((a, i) => gradSumSquares(rt, a, this.norms, i));
    clipCoefficient(rt, this.norms, this.gradScale, this.cfg.clipNorm, this.dynamicScale);
    for (const s of this.slots) {
      const p = s.p.tensor, g = p.grad!, decay = !s.p.noDecay && this.cfg.weightDecay > 0;
      if (this.cfg.kind === "adamw") {
        adamwStep(rt, p, g, s.state[0], s.state[1], this.hyper, this.gradScale, decay);
      } else {
        sgdStep(rt, p, g, s.state[0], this.hyper, this.gradScale, decay, this.cfg.nesterov);
      }
    }
    for (const a of this.gradArenas) fill(rt, a, 0);
    rt.host(() => this.t++); // also on every replay of a captured step
  }

  /**
   * The backward seed: the loss scale (1 in f32), copied so that the tape never aliases the
   * optimiser's state. Gradients arrive multiplied by it; the update divides it out.
   */
  lossSeed(): Tensor {
    return map(this.rt, [this.gradScale.slice0(3, 4)], "v0", { name: "lossScale" });
  }

  /** Zeroes every gradient (e.g. after an evaluation pass that accumulated some). */
  zeroGrad(): void {
    for (const a of this.gradArenas) fill(this.rt, a, 0);
  }
}
