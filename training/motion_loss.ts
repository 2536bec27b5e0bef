// MotionBERT's pretraining loss (its train.py with MB_pretrain.yaml's weights): the mean
// per-joint position error (MPJPE) plus 20 x the same error of the frame-to-frame velocities.
// Its scale-normalised term (lambda_scale 0.5) is left out: it needs a per-sample least-squares
// scale, and the crop_scale normalisation already fixes the scale of input and target.
import * as ops from "../autograd/ops.ts";
import type { Tensor } from "../runtime/tensor.ts";

export const VELOCITY_WEIGHT = 20;

/** Each joint's Euclidean distance: (..., 3) and (..., 3) -> (...). */
export function jointDistance(a: Tensor, b: Tensor): Tensor {
  const d = ops.sub(a, b);
  const sq = ops.sum(ops.mul(d, d), [d.rank - 1]);
  return ops.mul(sq, ops.rsqrtPlus(sq, 1e-12)); // sqrt, with a finite gradient at 0
}

/** The mean of every value as a [1] tensor. */
function meanAll(x: Tensor): Tensor {
  return ops.reshape(ops.mean(x, x.shape.map((_, i) => i), true), [1]);
}

/** pred and target (B, T, J, 3) -> [1]: MPJPE + VELOCITY_WEIGHT x velocity MPJPE. */
export function motionLoss(pred: Tensor, target: Tensor): Tensor {
  const pos = meanAll(jointDistance(pred, target));
  const T = pred.shape[1];
  if (T < 2) return pos;
  const velocity = (x: Tensor) => ops.sub(ops.narrow(x, 1, 1, T - 1), ops.narrow(x, 1, 0, T - 1));
  const vel = meanAll(jointDistance(velocity(pred), velocity(target)));
  return ops.add(pos, ops.scale(vel, VELOCITY_WEIGHT));
}
