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
import { BIND_ALIGN_BYTES, type Tensor } from "../runtime/tensor.ts";

/** Arena slots start at binding boundaries (f32 elements). */
const ALIGN = BIND_ALIGN_BYTES / 4;
/** Elements a parameter of n elements takes in an arena, padding included. */
const slotSize = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

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
  /**
   * The learning rate of a parameter as a multiple of the schedule's (MotionBERT fine-tunes its
   * head at 10x the backbone); 0 freezes it (no update, no decay, not in the clip norm).
   * Default: 1 for every parameter.
   */
  lrScale?: (name: string) => number;
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
  /** Its learning rate over the schedule's (0: frozen). */
  lrScale: number;
  /** Views into the arenas' state (AdamW: m, v; SGD: momentum), shaped as the parameter. */
  state: Tensor[];
}

/** Parameters of one group (weight decay, lr scale), packed, with gradients and state alike. */
interface Arena {
  params: Tensor;
  grads: Tensor;
  state: Tensor[];
  decay: boolean;
  lrScale: number;
  /** The group's hyper-parameters (its learning rate). */
  hyper: Tensor;
}

export class Optimizer {
  readonly slots: Slot[] = [];
  readonly hyper: Tensor; // f32[8], see kernels/optim.ts: the groups of lr scale 1
  /** One hyper-parameter tensor per learning-rate scale (the scale-1 one is `hyper`). */
  readonly #hypers = new Map<number, Tensor>();
  readonly gradScale: Tensor; // f32[8], see kernels/optim.ts: clip, norm, skip, loss scale
  readonly norms: Tensor; // f32[arenas]: sum of squares of each gradient arena
  /** Parameters, gradients and state, packed (see #pack). */
  readonly arenas: Arena[] = [];
  /** Completed update steps (bias correction uses t + 1). */
  t = 0;

  /** Dynamic loss scaling (mixed precision): set when the runtime computes in f16. */
  readonly dynamicScale: boolean;

  constructor(readonly rt: Runtime, params: Map<string, Param>, readonly cfg: OptimizerConfig) {
    this.dynamicScale = rt.computeDtype === "f16";
    for (const [name, p] of params) {
      this.slots.push({ name, p, state: [], lrScale: cfg.lrScale?.(name) ?? 1 });
    }
    this.hyper = rt.tensor(new Float32Array(8), [8], "f32", { persistent: true, name: "hyper" });
    this.#hypers.set(1, this.hyper);
    this.gradScale = rt.tensor(initialGradScale(this.dynamicScale), [8], "f32", {
      persistent: true,
      name: "gradScale",
    });
    this.#pack();
    const k = Math.max(1, this.arenas.length);
    this.norms = rt.tensor(new Float32Array(k), [k], "f32", {
      persistent: true,
      name: "gradNorms",
    });
  }

  /**
   * Packs parameters, gradients and optimiser state into arenas of at most the adapter's
   * binding size (a 94M-parameter model needs several on a 128 MiB limit), one set per
   * weight-decay group, with the same layout in all four. Each tensor starts at a binding
   * boundary (BIND_ALIGN_BYTES), so the layers' kernels see it at offset 0 and layers of one
   * shape share a compiled kernel. Then zeroing, the global norm and the update are one
   * dispatch per arena instead of one per tensor. The parameters keep their Tensor objects (relocated); their
   * .grad and the state become views. The padding stays zero: no norm, no update.
   */
  #pack(): void {
    const rt = this.rt;
    const limit = Math.floor(
      (rt.device.limits.maxStorageBufferBindingSize ?? 128 * 1024 * 1024) / 4,
    );
    const groups: { slots: Slot[]; size: number; decay: boolean; lrScale: number }[] = [];
    const scales = [...new Set(this.slots.map((s) => s.lrScale))];
    for (const lrScale of scales) {
      for (const decay of [true, false]) {
        let g: (typeof groups)[number] | undefined;
        const members = this.slots.filter((s) =>
          this.#decays(s) === decay && s.lrScale === lrScale
        );
        for (const s of members) {
          const n = slotSize(s.p.tensor.size);
          if (!g || g.size + n > limit) groups.push(g = { slots: [], size: 0, decay, lrScale });
          g.slots.push(s);
          g.size += n;
        }
      }
    }
    const names = this.cfg.kind === "adamw" ? ["m", "v"] : ["momentum"];
    for (const [i, g] of groups.entries()) {
      const arena = (what: string) =>
        rt.tensor(new Float32Array(g.size), [g.size], "f32", {
          persistent: true,
          name: `${what}.${i}`,
        });
      const a: Arena = {
        params: arena("params"),
        grads: arena("grads"),
        state: names.map((n) => arena(n)),
        decay: g.decay,
        lrScale: g.lrScale,
        hyper: this.#hyperOf(g.lrScale),
      };
      let at = 0;
      for (const s of g.slots) {
        const p = s.p.tensor, n = p.size;
        const place = (t: Tensor) => t.slice0(at, at + n).view(p.shape);
        rt.copy(p, place(a.params));
        rt.dispose(p); // the old storage (the copy above is recorded before any reuse)
        p.relocate(a.params.storage, a.params.offset + at);
        if (p.grad) rt.dispose(p.grad);
        p.grad = place(a.grads);
        s.state = a.state.map(place);
        at += slotSize(n);
      }
      this.arenas.push(a);
    }
  }

  #hyperOf(scale: number): Tensor {
    const h = this.#hypers.get(scale) ??
      this.rt.tensor(new Float32Array(8), [8], "f32", {
        persistent: true,
        name: `hyper.x${scale}`,
      });
    this.#hypers.set(scale, h);
    return h;
  }

  #decays(s: Slot): boolean {
    return !s.p.noDecay && this.cfg.weightDecay > 0;
  }

  /** Writes this step's hyper-parameters; call before recording the step. */
  beginStep(lr: number): void {
    const c = this.cfg, t = this.t + 1;
    const first = c.kind === "adamw" ? c.beta1 : c.momentum;
    for (const [scale, h] of this.#hypers) {
      const bias = [1 - c.beta1 ** t, 1 - c.beta2 ** t];
      this.rt.write(h, [lr * scale, first, c.beta2, c.eps, c.weightDecay, ...bias, 0]);
    }
  }

  /** Records clipping, the update of every parameter, and zeroing of the gradients. */
  step(): void {
    const rt = this.rt;
    // frozen groups keep their norm slot at 0: they do not count in the clip
    this.arenas.forEach((a, i) => a.lrScale > 0 && gradSumSquares(rt, a.grads, this.norms, i));
    clipCoefficient(rt, this.norms, this.gradScale, this.cfg.clipNorm, this.dynamicScale);
    for (const a of this.arenas) {
      if (a.lrScale === 0) continue;
      const [p, g, st] = [a.params, a.grads, a.state];
      if (this.cfg.kind === "adamw") {
        adamwStep(rt, p, g, st[0], st[1], a.hyper, this.gradScale, a.decay);
      } else {
        sgdStep(rt, p, g, st[0], a.hyper, this.gradScale, a.decay, this.cfg.nesterov);
      }
    }
    for (const a of this.arenas) fill(rt, a.grads, 0);
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
    for (const a of this.arenas) fill(this.rt, a.grads, 0);
  }
}
