// ViViT (Arnab et al. 2021) with tubelet embedding on heatmap volumes (N, C, T, H, W).
//   tokens: non-overlapping t x h x w tubes, each a Linear over C*t*h*w values (= Conv3d
//   with kernel = stride): n_t x n_h x n_w tokens.
//   Model 1 (joint space-time attention): z = [cls; tokens] + E_pos through one encoder.
//   Model 2 (factorised encoder): per time index a spatial encoder over the n_h*n_w tokens
//   (+ its own cls, shared weights over time), then a temporal encoder over the n_t
//   spatial cls outputs (+ a temporal cls). The classifier starts at zero.
import * as ops from "../autograd/ops.ts";
import { Dropout, LayerNorm, Linear, type Stochastic } from "../layers/basic.ts";
import { Embedding } from "../layers/extra.ts";
import { Rng } from "../layers/init.ts";
import { Module } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { ModelConfig } from "./config.ts";
import { Encoder } from "./encoder.ts";

export function tubeletGridOf(c: ModelConfig): [number, number, number] {
  const [kt, kh, kw] = c.tubelet, i = c.input;
  if (i.kind !== "heatmap") throw new Error(`${c.family} takes heatmap input, not ${i.kind}`);
  if (i.frames % kt || i.size % kh || i.size % kw) {
    throw new Error(
      `tubelet ${c.tubelet.join("x")} does not divide the input ${i.frames}x${i.size}x${i.size}`,
    );
  }
  return [i.frames / kt, i.size / kh, i.size / kw];
}

export class Vivit extends Module {
  readonly ctx: Stochastic = { seed: null, sites: 0 };
  readonly embed: Linear;
  readonly cls: Embedding;
  readonly pos: Embedding;
  readonly encoder: Encoder;
  readonly norm: LayerNorm;
  // model 2 only
  readonly temporalCls: Embedding | null = null;
  readonly temporalPos: Embedding | null = null;
  readonly temporalEncoder: Encoder | null = null;
  readonly temporalNorm: LayerNorm | null = null;
  readonly headDrop: Dropout;
  readonly head: Linear;

  constructor(rt: Runtime, readonly config: ModelConfig, seed = 0) {
    super(rt);
    const c = config, rng = new Rng(seed);
    const [nt, nh, nw] = tubeletGridOf(c);
    const m2 = c.family === "vivit-m2";
    const patch = c.input.channels * c.tubelet[0] * c.tubelet[1] * c.tubelet[2];
    this.embed = this.child("embed", new Linear(rt, patch, c.width, rng.fork(1), { std: 0.02 }));
    this.cls = this.child("cls", new Embedding(rt, [1, 1, c.width], rng.fork(2)));
    this.pos = this.child(
      "pos",
      new Embedding(rt, [(m2 ? nh * nw : nt * nh * nw) + 1, c.width], rng.fork(3)),
    );
    this.encoder = this.child(
      "blocks",
      new Encoder(rt, c, m2 ? c.spatialDepth : c.depth, rng.fork(4), this.ctx),
    );
    this.norm = this.child("norm", new LayerNorm(rt, c.width, rng.fork(5)));
    if (m2) {
      this.temporalCls = this.child(
        "temporal_cls",
        new Embedding(rt, [1, 1, c.width], rng.fork(6)),
      );
      this.temporalPos = this.child(
        "temporal_pos",
        new Embedding(rt, [nt + 1, c.width], rng.fork(7)),
      );
      this.temporalEncoder = this.child(
        "temporal_blocks",
        new Encoder(rt, c, c.temporalDepth, rng.fork(8), this.ctx),
      );
      this.temporalNorm = this.child("temporal_norm", new LayerNorm(rt, c.width, rng.fork(9)));
    }
    this.headDrop = this.child("head_drop", new Dropout(rt, c.headDropout, this.ctx));
    this.head = this.child(
      "head",
      new Linear(rt, c.width, c.classes, rng.fork(10), { zero: true }),
    );
  }

  /** z (B, L, d) -> [cls; z] + pos -> encoder -> LN -> cls output (B, d) */
  #encode(z: Tensor, cls: Embedding, pos: Embedding, enc: Encoder, norm: LayerNorm): Tensor {
    const [b, , d] = z.shape;
    z = ops.add(ops.concat([ops.expand(cls.weight, [b, 1, d]), z], 1), pos.weight);
    z = norm.forward(enc.forward(z));
    return ops.reshape(ops.narrow(z, 1, 0, 1), [b, d]);
  }

  /** x (N, C, T, H, W) -> logits (N, classes) */
  forward(x: Tensor): Tensor {
    const n = x.shape[0], d = this.config.width;
    const [nt, nh, nw] = tubeletGridOf(this.config);
    const tokens = this.embed.forward(ops.patchify(x, this.config.tubelet)); // (N, nt*nh*nw, d), t-major
    let h: Tensor;
    if (!this.temporalEncoder) {
      h = this.#encode(tokens, this.cls, this.pos, this.encoder, this.norm); // (N, d)
    } else {
      const spatial = this.#encode(
        tokens.view([n * nt, nh * nw, d]),
        this.cls,
        this.pos,
        this.encoder,
        this.norm,
      ); // (N*nt, d)
      h = this.#encode(
        spatial.view([n, nt, d]),
        this.temporalCls!,
        this.temporalPos!,
        this.temporalEncoder,
        this.temporalNorm!,
      );
    }
    return this.head.forward(this.headDrop.forward(h));
  }
}
