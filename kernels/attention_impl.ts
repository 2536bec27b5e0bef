// Which attention kernels run: "fused" (kernels/attention*.ts, online softmax, nothing of size
// L x L stored) or "dense" (kernels/attention_dense.ts, batched matmuls around a stored
// softmax). A software adapter takes dense for f32 sequences up to DENSE_ATTENTION_MAX_L, where
// it measured faster. Where the autotuner runs, f32 sequences up to DENSE_TUNE_MAX_L are timed
// both ways (forward and backward on scratch operands) and the faster is cached per shape: on a
// big GPU dense rides on the tuned matmuls, as PyTorch's math attention does.
import type { Runtime } from "../runtime/runtime.ts";
import { onScratch } from "../runtime/autotune.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { attentionBackward, attentionForward, dims } from "./attention.ts";
import {
  DENSE_ATTENTION_MAX_L,
  denseAttentionBackward,
  denseAttentionForward,
} from "./attention_dense.ts";

/** Longest sequence for which dense attention is a candidate (it stores B x H x L x L). */
export const DENSE_TUNE_MAX_L = 1024;

export type AttentionImpl = Runtime["attention"];

/** True when attention over q, k, v should take the dense kernels. */
export function useDenseAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: { impl?: AttentionImpl; mask?: Tensor; scale?: number } = {},
): boolean {
  const rt = q.rt, impl = o.impl ?? rt.attention;
  if (impl !== "auto") return impl === "dense";
  const l = Math.max(q.shape[1], k.shape[1]);
  const heuristic = rt.gpu.software && q.dtype === "f32" && l <= DENSE_ATTENTION_MAX_L;
  if (!rt.tuner || q.dtype !== "f32" || l > DENSE_TUNE_MAX_L) return heuristic;
  const first = heuristic ? "dense" : "fused";
  const choice = rt.tuner.choose({
    key: `attention impl ${q.dtype} ${JSON.stringify(dims(q, k, v, o.mask))}${
      o.mask ? " mask" : ""
    }`,
    candidates: [first, heuristic ? "fused" : "dense"],
    prepare: (rt) => {
      const [b, lq, h, d] = q.shape;
      const dout = rt.zeros([b, lq, h, d], q.dtype);
      const run = onScratch(rt, { q, k, v, mask: o.mask }, (x, c) => recordBoth(rt, x, dout, c, o));
      return { record: run.record, dispose: () => (run.dispose(), rt.dispose(dout)) };
    },
  });
  return (choice ?? first) === "dense";
}

/** One forward + backward of attention by the chosen implementation (for timing). */
function recordBoth(
  rt: Runtime,
  x: { q: Tensor; k: Tensor; v: Tensor; mask?: Tensor },
  dout: Tensor,
  choice: string,
  o: { scale?: number },
): void {
  const opts = { mask: x.mask, scale: o.scale };
  rt.tidy(() => {
    if (choice === "dense") {
      const { saved } = denseAttentionForward(rt, x.q, x.k, x.v, opts);
      denseAttentionBackward(rt, dout, saved);
    } else {
      const { out, lse } = attentionForward(rt, x.q, x.k, x.v, opts);
      attentionBackward(rt, dout, x.q, x.k, x.v, out, lse, opts);
    }
  });
}
