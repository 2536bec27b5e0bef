// MotionBERT's DSTformer (Zhu et al. 2023) with its action head.
//   tokens: one per joint per frame, F0 = W_in x + E_s[j] + E_t[t]   (B, T, J, d)
//   level i: x_ST = T-block(S-block(x)), x_TS = S-block(T-block(x)) (each: attention + MLP,
//            pre-norm, residual), alpha = softmax(W_f [x_ST; x_TS]) per token (W_f = 0,
//            b_f = 1/2 at start), x = alpha_0 x_ST + alpha_1 x_TS
//   representation: E = tanh(W_r LN(x))   (B, T, J, rep)
//   action head: mean over T, flatten J*rep, mean over persons, Linear -> BatchNorm ->
//   ReLU -> Linear.
// Heatmap input: joint j's per-frame heatmap (H*W values) is token (t, j)'s input;
// keypoint input: (x, y, score) or (x, y, z) per joint, persons through the backbone.
import * as ops from "../autograd/ops.ts";
import { Block, Dropout, LayerNorm, Linear, type Stochastic } from "../layers/basic.ts";
import { BatchNorm1d, Embedding } from "../layers/extra.ts";
import { Rng } from "../layers/init.ts";
import { Module } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { ModelConfig } from "./config.ts";
import { spatialInit } from "./encoder.ts";

/** Joints per frame: the input's channels, over the persons when they are split. */
export function tokenJoints(c: ModelConfig): number {
  const i = c.input;
  const split = c.heatmapPersons === "stack" || c.heatmapPersons === "separate";
  return i.kind === "heatmap" && split ? i.channels / i.persons : i.channels;
}

/** Values in one token's input: a heatmap plane (M planes when stacked) or one joint's row. */
export function tokenSize(c: ModelConfig): number {
  const i = c.input;
  if (i.kind !== "heatmap") return 3;
  return i.size * i.size * (c.heatmapPersons === "stack" ? i.persons : 1);
}

/**
 * A pre-norm Block (layers/basic.ts: its parameters, names and initialisation) over the
 * spatial (joints) or temporal (frames) axis of (B, T, J, d): attention across J within a
 * frame, or across T for each joint; the MLP per token. The residuals stay (B, T, J, d), so
 * stochastic depth keeps or drops a branch per sample b.
 */
class AxisBlock extends Block {
  constructor(
    rt: Runtime,
    c: ModelConfig,
    readonly axis: "spatial" | "temporal",
    rng: Rng,
    ctx: Stochastic,
    dropPath: number,
  ) {
    super(rt, c.width, c.heads, rng, ctx, {
      mlpRatio: c.mlpRatio,
      dropout: c.dropout,
      dropPath,
      std: 0.02,
    });
  }
  /** x (B, T, J, d) -> (B, T, J, d) */
  override forward(x: Tensor): Tensor {
    const [b, t, j, d] = x.shape;
    const seq = this.axis === "spatial"
      ? ops.reshape(x, [b * t, j, d])
      : ops.reshape(ops.permute(x, [0, 2, 1, 3]), [b * j, t, d]);
    const a = this.attn.forward(this.norm1.forward(seq));
    const back = (y: Tensor) =>
      this.axis === "spatial"
        ? ops.reshape(y, [b, t, j, d])
        : ops.permute(ops.reshape(y, [b, j, t, d]), [0, 2, 1, 3]);
    x = ops.add(x, this.dropPath.forward(back(a)));
    return ops.add(x, this.dropPath.forward(this.mlp.forward(this.norm2.forward(x))));
  }
}

/** One depth level: two streams (S then T, T then S) fused per token. */
class DualStream extends Module {
  readonly st: AxisBlock[];
  readonly ts: AxisBlock[];
  readonly fuse: Linear;
  constructor(rt: Runtime, c: ModelConfig, rng: Rng, ctx: Stochastic, dropPath: number) {
    super(rt);
    this.st = [
      this.child("st_spatial", new AxisBlock(rt, c, "spatial", rng.fork(1), ctx, dropPath)),
      this.child("st_temporal", new AxisBlock(rt, c, "temporal", rng.fork(2), ctx, dropPath)),
    ];
    this.ts = [
      this.child("ts_temporal", new AxisBlock(rt, c, "temporal", rng.fork(3), ctx, dropPath)),
      this.child("ts_spatial", new AxisBlock(rt, c, "spatial", rng.fork(4), ctx, dropPath)),
    ];
    this.fuse = this.child(
      "fuse",
      new Linear(rt, 2 * c.width, 2, rng.fork(5), { zero: true, biasInit: 0.5 }),
    );
  }
  forward(x: Tensor): Tensor {
    const xst = this.st[1].forward(this.st[0].forward(x));
    const xts = this.ts[1].forward(this.ts[0].forward(x));
    const alpha = ops.softmax(this.fuse.forward(ops.concat([xst, xts], 3))); // (B, T, J, 2)
    return ops.add(
      ops.mul(xst, ops.narrow(alpha, 3, 0, 1)),
      ops.mul(xts, ops.narrow(alpha, 3, 1, 1)),
    );
  }
}

export class DSTformer extends Module {
  readonly ctx: Stochastic = { seed: null, sites: 0 };
  readonly jointsEmbed: Linear;
  readonly spatialPos: Embedding;
  readonly temporalPos: Embedding;
  readonly levels: DualStream[];
  readonly norm: LayerNorm;
  readonly preLogits: Linear;
  /** The action head (classes > 0) or MotionBERT's pretraining head (classes 0). */
  readonly head: ActionHead | null = null;
  readonly motionHead: Linear | null = null;

  constructor(rt: Runtime, readonly config: ModelConfig, seed = 0) {
    super(rt);
    const c = config, rng = new Rng(seed), i = c.input;
    const joints = tokenJoints(c);
    const dimIn = tokenSize(c);
    this.jointsEmbed = this.child(
      "joints_embed",
      new Linear(
        rt,
        dimIn,
        c.width,
        rng.fork(1),
        i.kind === "heatmap" ? spatialInit(c) : { std: 0.02 },
      ),
    );
    this.spatialPos = this.child("pos_embed", new Embedding(rt, [joints, c.width], rng.fork(2)));
    this.temporalPos = this.child(
      "temp_embed",
      new Embedding(rt, [i.frames, 1, c.width], rng.fork(3)),
    );
    this.levels = Array.from(
      { length: c.depth },
      (_, k) =>
        this.child(
          `levels.${k}`,
          new DualStream(
            rt,
            c,
            rng.fork(10 + k),
            this.ctx,
            c.depth > 1 ? (c.dropPath * k) / (c.depth - 1) : 0,
          ),
        ),
    );
    this.norm = this.child("norm", new LayerNorm(rt, c.width, rng.fork(4), 1e-6));
    this.preLogits = this.child(
      "pre_logits",
      new Linear(rt, c.width, c.repDim, rng.fork(5), { std: 0.02 }),
    );
    if (c.classes === 0) {
      // MotionBERT's pretraining head: each token's representation -> its joint's 3D position
      this.motionHead = this.child(
        "motion_head",
        new Linear(rt, c.repDim, 3, rng.fork(9), { std: 0.02 }),
      );
    } else this.head = this.child("head", new ActionHead(rt, c, joints, rng, this.ctx));
  }

  /**
   * The representation (MotionBERT's get_representation) of each sequence and the batch's
   * samples N and persons M: x (N, J, T, H, W) heatmaps or (N, M, T, V, 3) keypoints ->
   * rep (N*M, T, J, rep).
   */
  represent(x: Tensor): { rep: Tensor; n: number; m: number } {
    const c = this.config, i = c.input;
    let tokens: Tensor, n: number, m: number;
    if (i.kind === "heatmap") {
      const [nn, , t, h, w] = x.shape, j = tokenJoints(c), M = i.persons;
      n = nn;
      m = c.heatmapPersons === "separate" ? M : 1;
      if (c.heatmapPersons === "stack") {
        // token (t, j): the planes of joint j of every person, person-major
        const planes = ops.permute(x.view([nn, M, j, t, h * w]), [0, 3, 2, 1, 4]);
        tokens = ops.reshape(planes, [nn, t, j, M * h * w]);
      } else {
        const rows = nn * m; // separate: every person is a sequence of its own
        const planes = ops.permute(x.view([rows, j, t, h * w]), [0, 2, 1, 3]);
        tokens = ops.reshape(planes, [rows, t, j, h * w]);
      }
    } else {
      const [nn, mm, t, v, k] = x.shape;
      n = nn;
      m = mm;
      tokens = x.view([nn * mm, t, v, k]);
    }
    let z = this.jointsEmbed.forward(tokens); // (B, T, J, d)
    z = ops.add(ops.add(z, this.spatialPos.weight), this.temporalPos.weight);
    for (const level of this.levels) z = level.forward(z);
    return { rep: ops.tanh(this.preLogits.forward(this.norm.forward(z))), n, m }; // (B, T, J, rep)
  }

  /**
   * x: (N, J, T, H, W) heatmaps or (N, M, T, V, 3) keypoints -> logits (N, classes), or with
   * the pretraining head, each joint's 3D position (N*M, T, J, 3).
   */
  forward(x: Tensor): Tensor {
    const { rep, n, m } = this.represent(x);
    if (this.motionHead) return this.motionHead.forward(rep);
    return this.head!.forward(rep, n, m);
  }
}

/** MotionBERT's action head: mean over T, flatten J*rep, mean over persons, Linear ->
 * BatchNorm -> ReLU -> Linear ("head.fc1", "head.bn", "head.fc2"). */
class ActionHead extends Module {
  readonly drop: Dropout;
  readonly fc1: Linear;
  readonly bn: BatchNorm1d;
  readonly fc2: Linear;
  constructor(rt: Runtime, c: ModelConfig, joints: number, rng: Rng, ctx: Stochastic) {
    super(rt);
    this.drop = this.child("drop", new Dropout(rt, c.headDropout, ctx));
    this.fc1 = this.child(
      "fc1",
      new Linear(rt, joints * c.repDim, c.headHidden, rng.fork(6), { std: 0.02 }),
    );
    this.bn = this.child("bn", new BatchNorm1d(rt, c.headHidden, rng.fork(7)));
    this.fc2 = this.child(
      "fc2",
      new Linear(rt, c.headHidden, c.classes, rng.fork(8), { std: 0.02 }),
    );
  }
  /** rep (N*M, T, J, rep) -> logits (N, classes) */
  forward(rep: Tensor, n: number, m: number): Tensor {
    const [, , j, r] = rep.shape;
    // (N, M, T, J, rep) -> mean over T -> (N, M, J*rep) -> mean over M
    const perPerson = ops.reshape(ops.mean(this.drop.forward(rep), [1]), [n, m, j * r]);
    const feat = ops.mean(perPerson, [1]); // (N, J*rep)
    return this.fc2.forward(ops.relu(this.bn.forward(this.fc1.forward(feat))));
  }
}
