// Multi-head scaled dot-product attention, O = softmax(Q K^T * scale + mask) V per batch and
// head, over (B, L, H, D) views of any strides (slices of one packed qkv projection, say), by
// one of three variants, chosen in one place (chooseVariant):
//   rows      the portable kernels (./rows.ts), any adapter: one invocation per row, `wg` rows
//             of a (batch, head) per workgroup; `wg` by adapter, then autotuned, per pass.
//   subgroup  the 8-lane subgroup kernels (./subgroup.ts), where the adapter has them.
//   dense     batched matmuls around a stored softmax (./dense.ts).
// rows and subgroup are the "fused" ones: online softmax, nothing of size L x L stored, the
// forward's log-sum-exp per row saved for the backward. ./reference.ts is the plain TypeScript
// forward and backward every variant is checked against (`bench kernels`, the tests).
import type { Runtime } from "../../runtime/runtime.ts";
import { onScratch } from "../../runtime/autotune.ts";
import { BYTES_PER_ELEMENT } from "../../runtime/dtype.ts";
import type { KernelSpec } from "../../runtime/kernel.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import { ShapeError } from "../wgsl.ts";
import { denseAttentionBackward, denseAttentionForward } from "./dense.ts";
import { dkdvSpec, dqSpec, forwardSpec } from "./rows.ts";
import { type AttentionKernelOptions, type Dims, dims } from "./shared.ts";
import { dkdvKernel, dqKernel, forwardKernel, subgroupsServe } from "./subgroup.ts";

export { type AttentionKernelOptions, type Dims, dims, packedPart } from "./shared.ts";
export {
  denseAttentionBackward,
  denseAttentionForward,
  type DenseAttentionSaved,
} from "./dense.ts";

/** How one attention is computed (see the head of this file). */
export type AttentionVariant = "rows" | "subgroup" | "dense";

/** Every variant, in the order `bench kernels` checks and times them. */
export const ATTENTION_VARIANTS: readonly AttentionVariant[] = ["rows", "subgroup", "dense"];

/** The runtime's setting: "fused", "dense", or "auto" (chooseVariant decides). */
export type AttentionImpl = Runtime["attention"];

/** Longest sequence for which the dense variant is chosen on a software adapter. */
export const DENSE_ATTENTION_MAX_L = 256;

/** Longest sequence for which dense attention is a candidate (it stores B x H x L x L). */
export const DENSE_TUNE_MAX_L = 1024;

/** The fused variants' options. */
export interface FusedAttentionOptions extends AttentionKernelOptions {
  /** Default: the subgroup kernels where they serve these tensors, else rows. */
  variant?: "rows" | "subgroup";
  /** Rows per workgroup of the rows kernels (default: by adapter, then autotuned). */
  rows?: number;
}

/**
 * The one place a variant is chosen, for attention over q, k, v (B, L, H, D). o.impl (default
 * the runtime's `attention`) "dense" or "fused" forces the family. "auto" takes dense for f32
 * sequences up to DENSE_ATTENTION_MAX_L on a software adapter, where it measured faster; where
 * the autotuner runs, f32 sequences up to DENSE_TUNE_MAX_L are timed both ways (forward and
 * backward on scratch operands) and the faster is cached per shape: on a big GPU dense rides
 * on the tuned matmuls, as PyTorch's math attention does. The fused family is "subgroup"
 * where those kernels serve q, k, v, else "rows"; its backward asks `fusedVariant` again with
 * dout and out too (an unaligned dout takes the rows kernels).
 */
export function chooseVariant(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: { impl?: AttentionImpl; mask?: Tensor; scale?: number } = {},
): AttentionVariant {
  return denseWanted(q, k, v, o) ? "dense" : fusedVariant(q.rt, [q, k, v], q.shape[3]);
}

/**
 * Whether `variant` can run attention over q, k, v here (what `bench kernels` asks before it
 * checks and times one): subgroup needs its adapter and layouts (subgroupsServe); dense needs
 * the B x H x Lq x Lk scores within one storage binding.
 */
export function variantServes(variant: AttentionVariant, q: Tensor, k: Tensor, v: Tensor): boolean {
  const rt = q.rt, [b, lq, h, d] = q.shape;
  if (variant === "subgroup") return subgroupsServe(rt, [q, k, v], d);
  if (variant === "dense") {
    const bytes = b * h * lq * k.shape[1] * BYTES_PER_ELEMENT[q.dtype];
    return bytes <= rt.gpu.description.limits.maxStorageBufferBindingSize;
  }
  return true;
}

/** The fused kernels for `ts` (q, k, v and, in the backward, dout and out) of head dim d. */
function fusedVariant(rt: Runtime, ts: Tensor[], d: number): "rows" | "subgroup" {
  return subgroupsServe(rt, ts, d) ? "subgroup" : "rows";
}

/** chooseVariant's dense-or-fused half. */
function denseWanted(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: { impl?: AttentionImpl; mask?: Tensor; scale?: number },
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
      const run = onScratch(rt, { q, k, v, mask: o.mask }, (x, c) => {
        const variant = c === "dense" ? "dense" : fusedVariant(rt, [x.q, x.k, x.v], d);
        rt.tidy(() => void runVariant(rt, variant, x, dout, o));
      });
      return { record: run.record, dispose: () => (run.dispose(), rt.dispose(dout)) };
    },
  });
  return (choice ?? first) === "dense";
}

/**
 * One forward and backward by `variant` (dq, dk, dv contiguous (B, L, H, D)): what the
 * dense-or-fused tuning times and `bench kernels` checks against ./reference.ts.
 */
export function runVariant(
  rt: Runtime,
  variant: AttentionVariant,
  x: { q: Tensor; k: Tensor; v: Tensor; mask?: Tensor },
  dout: Tensor,
  o: { scale?: number } = {},
): { out: Tensor; dq: Tensor; dk: Tensor; dv: Tensor } {
  const opts = { mask: x.mask, scale: o.scale };
  if (variant === "dense") {
    const { out, saved } = denseAttentionForward(rt, x.q, x.k, x.v, opts);
    return { out, ...denseAttentionBackward(rt, dout, saved) };
  }
  const { out, lse } = attentionForward(rt, x.q, x.k, x.v, { ...opts, variant });
  return { out, ...attentionBackward(rt, dout, x.q, x.k, x.v, out, lse, { ...opts, variant }) };
}

/** The fused forward: out (B, Lq, H, D) and the log-sum-exp (B, H, Lq) the backward needs. */
export function attentionForward(
  rt: Runtime,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: FusedAttentionOptions = {},
): { out: Tensor; lse: Tensor } {
  const dm = dims(q, k, v, o.mask);
  const { b, h, lq, d } = dm;
  const scale = o.scale ?? 1 / Math.sqrt(d);
  const out = rt.empty([b, lq, h, d], q.dtype, "attention.out");
  const lse = rt.empty([b, h, lq], "f32", "attention.lse");
  const variant = o.variant ?? fusedVariant(rt, [q, k, v], d);
  if (variant === "subgroup") {
    if (!subgroupsServe(rt, [q, k, v], d)) {
      throw new ShapeError("attention", "the subgroup kernels do not serve this adapter or layout");
    }
    rt.run(forwardKernel(q, k, v, out, lse, dm, scale, o.mask));
    return { out, lse };
  }
  const x = { q, k, v, out, lse, mask: o.mask };
  runPass(rt, "forward", lq, dm, o.rows, x, (x, wg) => forwardSpec(x, dm, scale, wg));
  return { out, lse };
}

/** The fused backward: dq, dk, dv contiguous (B, L, H, D). */
export function attentionBackward(
  rt: Runtime,
  dout: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  o: FusedAttentionOptions = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const dm = dims(q, k, v, o.mask);
  const { b, h, lq, lk, d } = dm;
  if (!dout.isContiguous || dout.size !== out.size) {
    throw new ShapeError("attention backward", "dout must be contiguous like out", dout, out);
  }
  const scale = o.scale ?? 1 / Math.sqrt(d);
  const dq = rt.empty([b, lq, h, d], q.dtype, "attention.dq");
  const dk = rt.empty([b, lk, h, d], k.dtype, "attention.dk");
  const dv = rt.empty([b, lk, h, d], v.dtype, "attention.dv");
  const delta = rt.empty([b, h, lq], "f32", "attention.delta");
  const variant = o.variant === "rows" ? "rows" : fusedVariant(rt, [q, k, v, dout, out], d);
  if (variant === "subgroup") {
    rt.run(dqKernel(dout, q, k, v, out, lse, dq, delta, dm, scale, o.mask));
    rt.run(dkdvKernel(dout, q, k, v, lse, delta, dk, dv, dm, scale, o.mask));
    return { dq, dk, dv };
  }
  const mask = o.mask;
  const x1 = { dout, q, k, v, out, lse, dq, delta, mask };
  runPass(rt, "dq", lq, dm, o.rows, x1, (x, wg) => dqSpec(x, dm, scale, wg));
  const x2 = { dout, q, k, v, lse, delta, dk, dv, mask };
  runPass(rt, "dkdv", lk, dm, o.rows, x2, (x, wg) => dkdvSpec(x, dm, scale, wg));
  return { dq, dk, dv };
}

/** Rows per workgroup tried for the rows kernels. */
const PASS_ROWS = [64, 32, 16];

/**
 * Rows per workgroup of a rows pass over `rows` rows: 64 on software adapters (what was
 * measured there); on GPUs fewer, so that short sequences (L = 64: one block per head)
 * still give batch x heads x blocks >= 512 workgroups. The autotuner refines it.
 */
function passRows(rt: Runtime, rows: number, dm: Dims): number {
  if (rt.gpu.software) return 64;
  return PASS_ROWS.find((wg) => dm.b * dm.h * Math.ceil(rows / wg) >= 512) ?? 16;
}

/** Runs one rows pass with the forced, heuristic or autotuned rows per workgroup. */
function runPass<X extends { q: Tensor; mask?: Tensor } & Record<string, Tensor | undefined>>(
  rt: Runtime,
  pass: string,
  rows: number,
  dm: Dims,
  forced: number | undefined,
  x: X,
  build: (x: X, wg: number) => KernelSpec,
): void {
  const heuristic = forced ?? passRows(rt, rows, dm);
  const choice = forced === undefined && rt.tuner?.choose({
    key: `attention ${pass} ${x.q.dtype} ${JSON.stringify(dm)}${x.mask ? " mask" : ""}`,
    candidates: [heuristic, ...PASS_ROWS.filter((r) => r !== heuristic)].map(String),
    prepare: (rt) => onScratch(rt, x, (sx, c) => rt.run(build(sx, Number(c)))),
  });
  rt.run(build(x, choice ? Number(choice) : heuristic));
}
