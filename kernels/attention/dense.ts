// Dense attention: the score matrix materialised. S = Q K^T (+ mask), P = softmax(scale S),
// O = P V, each product one batched matmul over (B, H) that reads q, k, v straight from
// their strided (B, L, H, D) views and writes O in (B, L, H, D): no copies. For short
// sequences on lavapipe this beats the fused online-softmax kernels (./rows.ts, ./subgroup.ts)
// because the tiled matmul reaches several times their FLOP rate, and P for L <= 256 is
// small (B x H x L x L floats). The backward is the textbook one, from the saved P:
//   dP = dO V^T,  dV = P^T dO,  dS = scale P * (dP - rowsum(dP * P)),  dQ = dS K,
//   dK = dS^T Q.
import type { Runtime } from "../../runtime/runtime.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import { map } from "../map.ts";
import { matmul } from "../matmul.ts";
import { softmaxBackward, softmaxForward } from "../softmax.ts";
import { type AttentionKernelOptions, dims } from "./shared.ts";

/** What the backward needs: the inputs' views and the probabilities (B, H, Lq, Lk). */
export interface DenseAttentionSaved {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  p: Tensor;
  scale: number;
}

/** (B, L, H, D) -> the (B, H, L, D) view matmul reads as B x H matrices of L x D. */
const heads = (x: Tensor) => x.permuteView([0, 2, 1, 3]);

/**
 * q, k, v: (B, L, H, D) views with unit stride in D. mask: additive (Lq, Lk) or
 * (B, Lq, Lk). Returns the output (B, Lq, H, D) and what the backward needs.
 */
export function denseAttentionForward(
  rt: Runtime,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: AttentionKernelOptions = {},
): { out: Tensor; saved: DenseAttentionSaved } {
  const { b, lq, h, d, lk } = dims(q, k, v, o.mask);
  const scale = o.scale ?? 1 / Math.sqrt(d);
  let s = matmul(rt, heads(q), heads(k), { transB: true }); // (B, H, Lq, Lk)
  if (o.mask) {
    // The mask is added before scaling, so it is divided by the scale here.
    const m = o.mask.rank === 3 ? o.mask.view([b, 1, lq, lk]) : o.mask;
    s = map(rt, [s, m], `v0 + v1 * ${1 / scale}`, { name: "attention.mask" });
  }
  const p = softmaxForward(rt, s, scale);
  const out = rt.empty([b, lq, h, d], q.dtype, "attention.out");
  matmul(rt, p, heads(v), { out: heads(out) });
  return { out, saved: { q, k, v, p, scale } };
}

/**
 * dout: (B, Lq, H, D). Writes dq, dk, dv into the given (B, L, H, D) views (for instance the
 * three parts of a packed dqkv), or into new tensors.
 */
export function denseAttentionBackward(
  rt: Runtime,
  dout: Tensor,
  s: DenseAttentionSaved,
  into: { dq?: Tensor; dk?: Tensor; dv?: Tensor } = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const g = heads(dout);
  const dq = into.dq ?? rt.empty(s.q.shape, dout.dtype, "attention.dq");
  const dk = into.dk ?? rt.empty(s.k.shape, dout.dtype, "attention.dk");
  const dv = into.dv ?? rt.empty(s.v.shape, dout.dtype, "attention.dv");
  const dp = matmul(rt, g, heads(s.v), { transB: true }); // (B, H, Lq, Lk)
  matmul(rt, s.p, g, { transA: true, out: heads(dv) });
  const ds = softmaxBackward(rt, dp, s.p, s.scale);
  matmul(rt, ds, heads(s.k), { out: heads(dq) });
  matmul(rt, ds, heads(s.q), { transA: true, out: heads(dk) });
  return { dq, dk, dv };
}
