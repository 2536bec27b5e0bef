// The transformer's pieces, as in nanoGPT / timm: Linear, LayerNorm, multi-head
// self-attention, MLP and the pre-norm Block (two residual lines).
import * as ops from "../autograd/ops.ts";
import type { Activation } from "../kernels/matmul.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { Init, Rng } from "./init.ts";
import { Module } from "./module.ts";
import { DropPath } from "./extra.ts";

/** Per-step randomness for dropout: the trainer writes a new seed before each step. */
export interface Stochastic {
  /** The step's seed (an i32 tensor the trainer writes before each step); null: no dropout. */
  seed: Tensor | null;
  /** Dropout sites created so far in this model: each site's salt is its creation index,
   * so the same architecture gets the same random streams in any process. */
  sites: number;
}

/** A distinct RNG stream per dropout site, stable across steps and processes. */
export function nextSalt(ctx: Stochastic): number {
  ctx.sites++;
  return Math.imul(ctx.sites, 0x9e3779b1) >>> 0;
}

export class Linear extends Module {
  readonly weight: Tensor; // (out, in)
  readonly bias: Tensor | null; // (out)
  constructor(
    rt: Runtime,
    readonly inFeatures: number,
    readonly outFeatures: number,
    rng: Rng,
    o: { bias?: boolean; std?: number; zero?: boolean; biasInit?: number; init?: Init } = {},
  ) {
    super(rt);
    const init: Init = o.init ??
      (o.zero
        ? { kind: "zeros" as const }
        : o.std !== undefined
        ? { kind: "truncNormal" as const, std: o.std }
        : { kind: "xavierUniform" as const, fanIn: inFeatures, fanOut: outFeatures });
    this.weight = this.param("weight", [outFeatures, inFeatures], init, rng);
    this.bias = o.bias === false ? null : this.param(
      "bias",
      [outFeatures],
      o.biasInit !== undefined ? { kind: "constant", value: o.biasInit } : { kind: "zeros" },
      rng,
      { noDecay: true },
    );
  }
  /** (..., in) -> (..., out) */
  forward(x: Tensor, act: Activation = "none"): Tensor {
    return ops.linear(x, this.weight, this.bias, act);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(rt: Runtime, readonly dim: number, rng: Rng, readonly eps = 1e-6) {
    super(rt);
    this.weight = this.param("weight", [dim], { kind: "ones" }, rng, { noDecay: true });
    this.bias = this.param("bias", [dim], { kind: "zeros" }, rng, { noDecay: true });
  }
  forward(x: Tensor): Tensor {
    return ops.layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class Dropout extends Module {
  readonly salt: number;
  constructor(rt: Runtime, readonly p: number, readonly ctx: Stochastic) {
    super(rt);
    this.salt = nextSalt(ctx);
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p <= 0 || !this.ctx.seed) return x;
    return ops.dropout(x, this.p, this.ctx.seed, this.salt);
  }
}

/** softmax(Q K^T / sqrt(d) + mask) V over `heads` heads; qkv from one projection. */
export class MultiHeadSelfAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly attnDrop: Dropout;
  readonly projDrop: Dropout;
  constructor(
    rt: Runtime,
    readonly dim: number,
    readonly heads: number,
    rng: Rng,
    ctx: Stochastic,
    o: { qkvBias?: boolean; attnDropout?: number; dropout?: number; std?: number } = {},
  ) {
    super(rt);
    if (dim % heads) throw new Error(`attention: width ${dim} is not divisible by ${heads} heads`);
    this.qkv = this.child(
      "qkv",
      new Linear(rt, dim, 3 * dim, rng.fork(1), { bias: o.qkvBias ?? true, std: o.std }),
    );
    this.proj = this.child("proj", new Linear(rt, dim, dim, rng.fork(2), { std: o.std }));
    this.attnDrop = this.child("attn_drop", new Dropout(rt, o.attnDropout ?? 0, ctx));
    this.projDrop = this.child("proj_drop", new Dropout(rt, o.dropout ?? 0, ctx));
  }
  /** x (B, L, C) -> (B, L, C) */
  forward(x: Tensor, mask?: Tensor): Tensor {
    const [b, l, c] = x.shape;
    const hd = c / this.heads;
    const qkv = this.qkv.forward(x).view([b, l, 3, this.heads, hd]); // (B, L, 3, H, D)
    const a = ops.attentionPacked(qkv, { mask }).view([b, l, c]); // (B, L, C)
    return this.projDrop.forward(this.proj.forward(a));
  }
}

export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly drop: Dropout;
  constructor(
    rt: Runtime,
    dim: number,
    hidden: number,
    rng: Rng,
    ctx: Stochastic,
    o: { dropout?: number; std?: number } = {},
  ) {
    super(rt);
    this.fc1 = this.child("fc1", new Linear(rt, dim, hidden, rng.fork(1), { std: o.std }));
    this.fc2 = this.child("fc2", new Linear(rt, hidden, dim, rng.fork(2), { std: o.std }));
    this.drop = this.child("drop", new Dropout(rt, o.dropout ?? 0, ctx));
  }
  forward(x: Tensor): Tensor {
    return this.drop.forward(this.fc2.forward(this.drop.forward(this.fc1.forward(x, "gelu"))));
  }
}

export interface BlockOptions {
  mlpRatio?: number;
  /** Stochastic depth rate of this block's residual branches. */
  dropPath?: number;
  qkvBias?: boolean;
  dropout?: number;
  attnDropout?: number;
  eps?: number;
  std?: number;
}

/** Pre-norm encoder block: x = x + Attn(LN(x)); x = x + MLP(LN(x)). */
export class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attn: MultiHeadSelfAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly dropPath: DropPath;
  constructor(
    rt: Runtime,
    dim: number,
    heads: number,
    rng: Rng,
    ctx: Stochastic,
    o: BlockOptions = {},
  ) {
    super(rt);
    const eps = o.eps ?? 1e-6;
    this.norm1 = this.child("norm1", new LayerNorm(rt, dim, rng.fork(1), eps));
    this.attn = this.child("attn", new MultiHeadSelfAttention(rt, dim, heads, rng.fork(2), ctx, o));
    this.norm2 = this.child("norm2", new LayerNorm(rt, dim, rng.fork(3), eps));
    this.mlp = this.child(
      "mlp",
      new Mlp(rt, dim, Math.round(dim * (o.mlpRatio ?? 4)), rng.fork(4), ctx, o),
    );
    this.dropPath = this.child("drop_path", new DropPath(rt, o.dropPath ?? 0, ctx));
  }
  /** x (B, L, C): x = x + DropPath(Attn(LN(x))); x = x + DropPath(MLP(LN(x))) */
  forward(x: Tensor, mask?: Tensor): Tensor {
    x = ops.add(x, this.dropPath.forward(this.attn.forward(this.norm1.forward(x), mask)));
    return ops.add(x, this.dropPath.forward(this.mlp.forward(this.norm2.forward(x))));
  }
}
