// What every attention variant shares: the sizes of one attention (Dims) and their checks, the
// options, the WGSL of the additive mask and of the kernels' header, and the (B, L, H, D) views
// of a packed (B, L, 3, H, D) projection.
import { Tensor } from "../../runtime/tensor.ts";
import { header, requireDtype, ShapeError } from "../wgsl.ts";

/** Sizes of one attention: batch, heads, query and key lengths, head dim. */
export interface Dims {
  b: number;
  h: number;
  lq: number;
  lk: number;
  d: number;
}

/** The options of every variant. */
export interface AttentionKernelOptions {
  /** Default 1 / sqrt(D). */
  scale?: number;
  /** Additive, (Lq, Lk) or (B, Lq, Lk). */
  mask?: Tensor;
}

/** Checks q, k, v (B, L, H, D) and the mask against each other; the sizes. */
export function dims(q: Tensor, k: Tensor, v: Tensor, mask?: Tensor): Dims {
  const op = "attention";
  for (const t of [q, k, v]) requireDtype(op, t, ["f32", "f16"]);
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new ShapeError(op, "q, k, v must be (B, L, H, D)", q, k, v);
  }
  const [b, lq, h, d] = q.shape;
  const lk = k.shape[1];
  if (
    k.shape[0] !== b || v.shape[0] !== b || k.shape[2] !== h || v.shape[2] !== h ||
    k.shape[3] !== d || v.shape[3] !== d || v.shape[1] !== lk
  ) {
    throw new ShapeError(op, "q, k, v disagree on batch, heads, length or head dim", q, k, v);
  }
  if (mask) {
    const ok = (mask.rank === 2 && mask.shape[0] === lq && mask.shape[1] === lk) ||
      (mask.rank === 3 && mask.shape[0] === b && mask.shape[1] === lq && mask.shape[2] === lk);
    if (!ok || !mask.isContiguous) {
      throw new ShapeError(
        op,
        `mask must be contiguous (Lq, Lk) or (B, Lq, Lk) = (${lq}, ${lk})`,
        mask,
      );
    }
  }
  return { b, h, lq, lk, d };
}

/** WGSL for the additive mask at (query i, key j) of batch `bb` ("0.0" without a mask). */
export function maskExpr(mask: Tensor | undefined, dm: Dims, i: string, j: string): string {
  if (!mask) return "0.0";
  const batch = mask.rank === 3 ? `bb * ${dm.lq * dm.lk}u + ` : "";
  return `f32(Mask[${mask.bindOffset}u + ${batch}${i} * ${dm.lk}u + ${j}])`;
}

/** The WGSL header of an attention kernel: q's storage type and the mask's. */
export function attentionHeader(q: Tensor, mask?: Tensor): string {
  return header(q.dtype, ...(mask ? [mask.dtype] : []));
}

/** A (B, L, H, D) view of part i of a packed (B, L, 3, H, D) tensor. */
export function packedPart(t: Tensor, i: number): Tensor {
  const [b, l, , h, d] = t.shape;
  const st = t.strides;
  return new Tensor(t.rt, t.storage, [b, l, h, d], t.dtype, t.offset + i * st[2], [
    st[0],
    st[1],
    st[3],
    st[4],
  ]);
}
