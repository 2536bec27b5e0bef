// Modules own named parameters. A parameter is a persistent tensor that needs a gradient,
// with a persistent .grad buffer that backward() accumulates into.
import type { Runtime } from "../runtime/runtime.ts";
import type { Shape, Tensor } from "../runtime/tensor.ts";
import { type Init, initValues, type Rng } from "./init.ts";

export interface ParamOptions {
  /** Excluded from weight decay (biases, norms, embeddings). */
  noDecay?: boolean;
}

export interface Param {
  tensor: Tensor;
  noDecay: boolean;
}

export abstract class Module {
  readonly #params = new Map<string, Param>();
  readonly #children = new Map<string, Module>();
  readonly #buffers = new Map<string, Tensor>();
  training = true;

  constructor(readonly rt: Runtime) {}

  protected param(name: string, shape: Shape, init: Init, rng: Rng, o: ParamOptions = {}): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    const t = this.rt.tensor(initValues(size, init, rng), shape, "f32", {
      persistent: true,
      name,
    });
    t.requiresGrad = true;
    t.grad = this.rt.tensor(new Float32Array(size), shape, "f32", {
      persistent: true,
      name: `${name}.grad`,
    });
    this.#params.set(name, { tensor: t, noDecay: !!o.noDecay });
    return t;
  }

  /** Persistent state that is saved but not trained (batch-norm running statistics). */
  protected buffer(name: string, shape: Shape, fill: number): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    const t = this.rt.tensor(new Float32Array(size).fill(fill), shape, "f32", {
      persistent: true,
      name,
    });
    this.#buffers.set(name, t);
    return t;
  }

  /** Every buffer, by dotted path. */
  namedBuffers(prefix = ""): Map<string, Tensor> {
    return this.#collect((m) => m.#buffers, prefix);
  }

  /** This module's own entries of one kind, then each child's under its name. */
  #collect<T>(own: (m: Module) => Map<string, T>, prefix: string): Map<string, T> {
    const out = new Map<string, T>();
    for (const [n, v] of own(this)) out.set(prefix + n, v);
    for (const [n, c] of this.#children) {
      for (const [k, v] of c.#collect(own, `${prefix}${n}.`)) out.set(k, v);
    }
    return out;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  /** Every parameter, by dotted path ("blocks.0.attn.qkv.weight"). */
  namedParams(prefix = ""): Map<string, Param> {
    return this.#collect((m) => m.#params, prefix);
  }

  parameterCount(): number {
    let n = 0;
    for (const p of this.namedParams().values()) n += p.tensor.size;
    return n;
  }

  /** Switches training mode (dropout, batch-norm statistics) on this and every child. */
  train(on = true): this {
    this.training = on;
    for (const c of this.#children.values()) c.train(on);
    return this;
  }
}
