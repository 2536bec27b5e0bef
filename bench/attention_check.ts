// `bench kernels` checks each attention variant against the plain TypeScript reference
// (kernels/attention/reference.ts), forward and backward, before it times it, as llm.c's
// dev/cuda does: a mismatch throws (the command fails), it never becomes a timing.
import { type AttentionVariant, type Dims, runVariant } from "../kernels/attention/mod.ts";
import {
  attentionBackwardReference,
  attentionForwardReference,
} from "../kernels/attention/reference.ts";
import type { DType } from "../runtime/dtype.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";

/** One check case: q, k, v, an additive (Lq, Lk) mask and dout, and the reference's answers. */
export interface AttentionCase {
  dm: Dims;
  dtype: DType;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  mask: Tensor;
  dout: Tensor;
  want: Record<"out" | "dq" | "dk" | "dv", Float64Array>;
}

/** Tolerances by storage dtype (f16 rounds every stored output). */
const TOL: Record<string, { atol: number; rtol: number }> = {
  f32: { atol: 1e-3, rtol: 1e-3 },
  f16: { atol: 5e-3, rtol: 1e-2 },
};

const wave = (n: number, seed: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.5);

/** Uploads a (B, L, H, D) case and computes the reference on the values as stored. */
export async function attentionCase(rt: Runtime, dm: Dims, dtype: DType): Promise<AttentionCase> {
  const { b, h, lq, lk, d } = dm;
  const up = (shape: number[], seed: number, dt: DType = dtype) =>
    rt.tensor(wave(shape.reduce((x, y) => x * y, 1), seed), shape, dt, { persistent: true });
  const q = up([b, lq, h, d], 1), k = up([b, lk, h, d], 2), v = up([b, lk, h, d], 3);
  const mask = up([lq, lk], 4, "f32"), dout = up([b, lq, h, d], 5);
  const [hq, hk, hv, hm, hd] = await rt.readMany([q, k, v, mask, dout]);
  const scale = 1 / Math.sqrt(d);
  const inputs = { q: hq, k: hk, v: hv, dm, scale, mask: hm };
  const out = attentionForwardReference(inputs);
  const grads = attentionBackwardReference(hd, inputs);
  return { dm, dtype, q, k, v, mask, dout, want: { out, ...grads } };
}

/**
 * Runs `variant` forward and backward on the case and compares out, dq, dk, dv with the
 * reference; throws naming the variant, the tensor and its worst element on a mismatch.
 * Returns the largest difference.
 */
export async function checkAttention(
  rt: Runtime,
  variant: AttentionVariant,
  c: AttentionCase,
): Promise<number> {
  const got = rt.tidy(() =>
    runVariant(rt, variant, { q: c.q, k: c.k, v: c.v, mask: c.mask }, c.dout)
  );
  const names = ["out", "dq", "dk", "dv"] as const;
  const host = await rt.readMany(names.map((n) => got[n]));
  for (const n of names) rt.dispose(got[n]);
  const tol = TOL[c.dtype];
  let maxDiff = 0;
  names.forEach((n, t) => {
    const g = host[t], want = c.want[n];
    for (let i = 0; i < want.length; i++) {
      const diff = Math.abs(g[i] - want[i]);
      if (!(diff <= tol.atol + tol.rtol * Math.abs(want[i]))) {
        const { b, lq, lk, h, d } = c.dm;
        throw new Error(
          `attention ${variant} (B${b} Lq${lq} Lk${lk} H${h} D${d} ${c.dtype}) disagrees with ` +
            `the reference: ${n}[${i}] = ${g[i]}, expected ${want[i]} (atol ${tol.atol}, ` +
            `rtol ${tol.rtol})`,
        );
      }
      maxDiff = Math.max(maxDiff, diff);
    }
  });
  return maxDiff;
}

/** Releases the case's tensors. */
export function disposeCase(rt: Runtime, c: AttentionCase): void {
  for (const t of [c.q, c.k, c.v, c.mask, c.dout]) rt.dispose(t);
}
