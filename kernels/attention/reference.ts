// Plain TypeScript attention, forward and backward, in f64: what every variant is checked
// against (`bench kernels`, tests/attention_reference_test.ts). Tensors are contiguous
// (B, L, H, D) arrays; the mask is additive, (Lq, Lk) or (B, Lq, Lk), told apart by length.
//   S = scale Q K^T + mask,  P = softmax(S) per row,  O = P V
//   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),  dQ = scale dS K,
//   dK = scale dS^T Q
import type { Dims } from "./shared.ts";

/** The probabilities P (Lq, Lk) of batch bb, head hh. */
function probabilities(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  dm: Dims,
  bb: number,
  hh: number,
  scale: number,
  mask?: ArrayLike<number>,
): Float64Array {
  const { h, lq, lk, d } = dm;
  const p = new Float64Array(lq * lk);
  const maskBase = mask && mask.length === lq * lk ? 0 : bb * lq * lk;
  for (let i = 0; i < lq; i++) {
    const row = p.subarray(i * lk, (i + 1) * lk);
    let m = -Infinity;
    for (let j = 0; j < lk; j++) {
      let s = 0;
      for (let e = 0; e < d; e++) {
        s += q[((bb * lq + i) * h + hh) * d + e] * k[((bb * lk + j) * h + hh) * d + e];
      }
      row[j] = s * scale + (mask ? mask[maskBase + i * lk + j] : 0);
      m = Math.max(m, row[j]);
    }
    let z = 0;
    for (let j = 0; j < lk; j++) z += row[j] = Math.exp(row[j] - m);
    for (let j = 0; j < lk; j++) row[j] /= z;
  }
  return p;
}

/** What both references take: q (B, Lq, H, D), k and v (B, Lk, H, D), an optional mask. */
export interface AttentionInputs {
  q: ArrayLike<number>;
  k: ArrayLike<number>;
  v: ArrayLike<number>;
  dm: Dims;
  /** Default 1 / sqrt(D). */
  scale?: number;
  mask?: ArrayLike<number>;
}

/** out (B, Lq, H, D). */
export function attentionForwardReference(a: AttentionInputs): Float64Array {
  const { q, k, v, dm, mask } = a, scale = a.scale ?? 1 / Math.sqrt(dm.d);
  const { b, h, lq, lk, d } = dm;
  const out = new Float64Array(b * lq * h * d);
  for (let bb = 0; bb < b; bb++) {
    for (let hh = 0; hh < h; hh++) {
      const p = probabilities(q, k, dm, bb, hh, scale, mask);
      for (let i = 0; i < lq; i++) {
        for (let e = 0; e < d; e++) {
          let acc = 0;
          for (let j = 0; j < lk; j++) acc += p[i * lk + j] * v[((bb * lk + j) * h + hh) * d + e];
          out[((bb * lq + i) * h + hh) * d + e] = acc;
        }
      }
    }
  }
  return out;
}

/** dq (B, Lq, H, D), dk and dv (B, Lk, H, D) for the output gradient dout (B, Lq, H, D). */
export function attentionBackwardReference(
  dout: ArrayLike<number>,
  a: AttentionInputs,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { q, k, v, dm, mask } = a, scale = a.scale ?? 1 / Math.sqrt(dm.d);
  const { b, h, lq, lk, d } = dm;
  const dq = new Float64Array(b * lq * h * d);
  const dk = new Float64Array(b * lk * h * d), dv = new Float64Array(b * lk * h * d);
  const qi = (bb: number, i: number, hh: number) => ((bb * lq + i) * h + hh) * d;
  const kj = (bb: number, j: number, hh: number) => ((bb * lk + j) * h + hh) * d;
  for (let bb = 0; bb < b; bb++) {
    for (let hh = 0; hh < h; hh++) {
      const p = probabilities(q, k, dm, bb, hh, scale, mask);
      for (let i = 0; i < lq; i++) {
        // dP_ij = dO_i . V_j, then dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij')
        const ds = new Float64Array(lk);
        let rowsum = 0;
        for (let j = 0; j < lk; j++) {
          let dp = 0;
          for (let e = 0; e < d; e++) dp += dout[qi(bb, i, hh) + e] * v[kj(bb, j, hh) + e];
          ds[j] = dp;
          rowsum += p[i * lk + j] * dp;
        }
        for (let j = 0; j < lk; j++) {
          const pij = p[i * lk + j];
          ds[j] = pij * (ds[j] - rowsum);
          for (let e = 0; e < d; e++) {
            dv[kj(bb, j, hh) + e] += pij * dout[qi(bb, i, hh) + e];
            dq[qi(bb, i, hh) + e] += scale * ds[j] * k[kj(bb, j, hh) + e];
            dk[kj(bb, j, hh) + e] += scale * ds[j] * q[qi(bb, i, hh) + e];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
