// What every family builds from its ModelConfig: the encoder (a stack of pre-norm blocks,
// vanilla and ViViT) and the start of a linear map over a heatmap's pixels (the vanilla joint
// stem, DSTformer's joint embedding).
import { Block, type Stochastic } from "../layers/basic.ts";
import type { Init, Rng } from "../layers/init.ts";
import { Module } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { ModelConfig } from "./config.ts";

/** Options of a linear map over a heatmap's pixels (ModelConfig.spatialInit). */
export function spatialInit(c: ModelConfig): { std?: number; init?: Init } {
  return c.spatialInit === "fourier" ? { init: { kind: "fourier2d", side: c.input.size } } : {
    std: 0.02,
  };
}

/** A stack of pre-norm blocks with linearly increasing stochastic depth. */
export class Encoder extends Module {
  readonly blocks: Block[];
  constructor(rt: Runtime, c: ModelConfig, depth: number, rng: Rng, ctx: Stochastic) {
    super(rt);
    this.blocks = Array.from(
      { length: depth },
      (_, i) =>
        this.child(
          `${i}`,
          new Block(rt, c.width, c.heads, rng.fork(100 + i), ctx, {
            mlpRatio: c.mlpRatio,
            dropout: c.dropout,
            dropPath: depth > 1 ? (c.dropPath * i) / (depth - 1) : 0,
            std: 0.02,
          }),
        ),
    );
  }
  forward(x: Tensor): Tensor {
    for (const b of this.blocks) x = b.forward(x);
    return x;
  }
}
