// Layers the study's models add to the transformer block: learned embeddings (CLS token,
// positional tables), stochastic depth, batch norm (MotionBERT's action head).
import * as ops from "../autograd/ops.ts";
import { noGrad } from "../autograd/tape.ts";
import { map } from "../kernels/map.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { nextSalt, type Stochastic } from "./basic.ts";
import type { Rng } from "./init.ts";
import { Module } from "./module.ts";

/** A learned table added to tokens, e.g. positions (L, C) or a CLS token (1, C). */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(rt: Runtime, shape: number[], rng: Rng, std = 0.02) {
    super(rt);
    this.weight = this.param(
      "weight",
      shape,
      std > 0 ? { kind: "truncNormal", std } : { kind: "zeros" },
      rng,
      { noDecay: true },
    );
  }
}

/** Per-sample stochastic depth: a residual branch survives with probability 1 - p (scaled). */
export class DropPath extends Module {
  readonly salt: number;
  constructor(rt: Runtime, readonly p: number, readonly ctx: Stochastic) {
    super(rt);
    this.salt = nextSalt(ctx);
  }
  /** branch (N, ...) -> branch * keep[n] / (1 - p) */
  forward(branch: Tensor): Tensor {
    if (!this.training || this.p <= 0 || !this.ctx.seed) return branch;
    const n = branch.shape[0];
    const ones = map(this.rt, [], "1.0", {
      out: this.rt.empty([n, ...branch.shape.slice(1).map(() => 1)]),
    });
    const keep = ops.dropout(ones, this.p, this.ctx.seed, this.salt); // no gradient: a constant
    return ops.mul(branch, keep);
  }
}

/**
 * BatchNorm1d over (N, F): batch statistics in training (with running averages, momentum
 * 0.1, unbiased variance as torch), running statistics in evaluation.
 */
export class BatchNorm1d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  constructor(
    rt: Runtime,
    readonly features: number,
    rng: Rng,
    readonly eps = 1e-5,
    readonly momentum = 0.1,
  ) {
    super(rt);
    this.weight = this.param("weight", [features], { kind: "ones" }, rng, { noDecay: true });
    this.bias = this.param("bias", [features], { kind: "zeros" }, rng, { noDecay: true });
    this.runningMean = this.buffer("running_mean", [features], 0);
    this.runningVar = this.buffer("running_var", [features], 1);
  }
  forward(x: Tensor): Tensor {
    x = ops.cast(x, "f32"); // batch statistics in f32 under mixed precision
    const n = x.shape[0];
    let mean: Tensor, varT: Tensor;
    if (this.training) {
      mean = ops.mean(x, [0], true); // (1, F)
      const xc = ops.sub(x, mean);
      varT = ops.mean(ops.mul(xc, xc), [0], true);
      // running statistics (no gradient), unbiased variance as torch
      noGrad(() => {
        const m = this.momentum;
        map(this.rt, [mean.view([this.features])], `yo * ${1 - m} + v0 * ${m}`, {
          out: this.runningMean,
        });
        map(
          this.rt,
          [varT.view([this.features])],
          `yo * ${1 - m} + v0 * ${(m * n) / Math.max(1, n - 1)}`,
          { out: this.runningVar },
        );
      });
      const inv = ops.rsqrtPlus(varT, this.eps);
      return ops.add(ops.mul(ops.mul(xc, inv), this.weight), this.bias);
    }
    mean = this.runningMean.view([1, this.features]);
    varT = this.runningVar.view([1, this.features]);
    const y = ops.mul(ops.sub(x, mean), ops.rsqrtPlus(varT, this.eps));
    return ops.add(ops.mul(y, this.weight), this.bias);
  }
}
