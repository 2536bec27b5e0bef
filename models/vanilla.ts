// The vanilla transformer (Vaswani et al.) as the study's control: one token per frame.
//   heatmaps (N, C, T, H, W) -> tokens x_t = W_e vec(V[:, t]) (C*H*W values per frame)
//   keypoints (N, M, T, V, 3) -> tokens x_t = W_e vec(P[:, t]) (M*V*3 values per frame)
//   or, with the joint stem, x_t = W_e [W_s V[c, t] for each channel c] (W_s shared)
//   z = [cls; x] + E_pos;  z = Block_L(...Block_1(z));  y = W_h pool(LN(z))
import * as ops from "../autograd/ops.ts";
import { Dropout, LayerNorm, Linear, type Stochastic } from "../layers/basic.ts";
import { Embedding } from "../layers/extra.ts";
import { Rng } from "../layers/init.ts";
import { Module } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { ModelConfig } from "./config.ts";
import { Encoder, spatialInit } from "./encoder.ts";

/** Values per frame token. */
export function frameTokenDim(c: ModelConfig): number {
  const i = c.input;
  return i.kind === "heatmap" ? i.channels * i.size * i.size : i.persons * i.channels * 3;
}

/** Frame tokens (N, T, D) from the model input. */
export function frameTokens(x: Tensor, c: ModelConfig): Tensor {
  if (c.input.kind === "heatmap") return ops.patchify(x, [1, c.input.size, c.input.size]);
  const [n, m, t, v, k] = x.shape; // (N, M, T, V, 3) -> (N, T, M*V*3)
  return ops.reshape(ops.permute(x, [0, 2, 1, 3, 4]), [n, t, m * v * k]);
}

/**
 * The joint stem, a frame embedding for heatmaps: one spatial map shared by every channel
 * (H*W -> stemDim), then a linear map of the C*stemDim channel features to the width. A flat
 * linear map (C*H*W -> d) learns a weight per pixel and channel from the few frames in which
 * that joint passed over that pixel; it fitted Penn Action slowly (train 74% after 20 epochs).
 * With spatialInit "fourier" the shared map starts as smooth functions of the pixel position
 * (1, x, y, low-frequency cosines and sines), so a joint's heatmap starts out as its score and
 * a smooth code of its position, and every channel trains the same map. No activation between
 * the two maps: a rectifier would cut the negative halves of x, y and the waves.
 */
export class JointStem extends Module {
  readonly spatial: Linear;
  readonly proj: Linear;
  constructor(rt: Runtime, readonly config: ModelConfig, rng: Rng) {
    super(rt);
    const c = config, i = c.input;
    this.spatial = this.child(
      "spatial",
      new Linear(rt, i.size * i.size, c.stemDim, rng.fork(1), spatialInit(c)),
    );
    this.proj = this.child(
      "proj",
      new Linear(rt, i.channels * c.stemDim, c.width, rng.fork(2), { std: 0.02 }),
    );
  }
  /** heatmaps (N, C, T, H, W) -> (N, T, d) */
  forward(x: Tensor): Tensor {
    const [n, c, t, h, w] = x.shape;
    const perChannel = ops.reshape(frameTokens(x, this.config), [n, t, c, h * w]);
    const features = this.spatial.forward(perChannel); // (N, T, C, e)
    return this.proj.forward(ops.reshape(features, [n, t, c * this.config.stemDim]));
  }
}

export class VanillaTransformer extends Module {
  readonly ctx: Stochastic = { seed: null, sites: 0 };
  readonly embed: JointStem | Linear;
  readonly cls: Embedding | null;
  readonly pos: Embedding;
  readonly encoder: Encoder;
  readonly norm: LayerNorm;
  readonly headDrop: Dropout;
  readonly head: Linear;

  constructor(rt: Runtime, readonly config: ModelConfig, seed = 0) {
    super(rt);
    const c = config, rng = new Rng(seed);
    const tokens = c.input.frames + (c.pool === "cls" ? 1 : 0);
    // The flat embedding keeps its historical parameter names (embed.weight / embed.bias).
    this.embed = this.child(
      "embed",
      c.stem === "joint" && c.input.kind === "heatmap"
        ? new JointStem(rt, c, rng.fork(1))
        : new Linear(rt, frameTokenDim(c), c.width, rng.fork(1), { std: 0.02 }),
    );
    this.cls = c.pool === "cls"
      ? this.child("cls", new Embedding(rt, [1, 1, c.width], rng.fork(2)))
      : null;
    this.pos = this.child("pos", new Embedding(rt, [tokens, c.width], rng.fork(3)));
    this.encoder = this.child("blocks", new Encoder(rt, c, c.depth, rng.fork(4), this.ctx));
    this.norm = this.child("norm", new LayerNorm(rt, c.width, rng.fork(5)));
    this.headDrop = this.child("head_drop", new Dropout(rt, c.headDropout, this.ctx));
    this.head = this.child("head", new Linear(rt, c.width, c.classes, rng.fork(6), { std: 0.02 }));
  }

  /** x: (N, C, T, H, W) heatmaps or (N, M, T, V, 3) keypoints -> logits (N, classes) */
  forward(x: Tensor): Tensor {
    const n = x.shape[0], d = this.config.width;
    const e = this.embed;
    let z = e instanceof JointStem ? e.forward(x) : e.forward(frameTokens(x, this.config)); // (N, T, d)
    if (this.cls) z = ops.concat([ops.expand(this.cls.weight, [n, 1, d]), z], 1); // (N, 1 + T, d)
    z = this.norm.forward(this.encoder.forward(ops.add(z, this.pos.weight)));
    const pooled = this.cls ? ops.reshape(ops.narrow(z, 1, 0, 1), [n, d]) : ops.mean(z, [1]); // (N, d)
    return this.head.forward(this.headDrop.forward(pooled));
  }
}
