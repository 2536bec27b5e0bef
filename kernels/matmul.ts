// matmul: C[b] = op(A[b]) @ op(B[b]) (+ bias) (activation), batched and strided, either
// operand transposed, optionally accumulating into C (gradient accumulation).
//
// This file is the op: its shape and tiling types, the heuristic tiling, the launch (one
// kernel, or split-K slices and their sum), the autotuner's candidates and the plain
// TypeScript reference. The kernels are built in matmul/: kernel.ts (the frame every kernel
// shares) around one family's K loop, register.ts (each invocation loads its own A and B),
// subgroup.ts (lanes share A through subgroupShuffle) or shared.ts (workgroup tiles in shared
// memory), ending in epilogue.ts; splitk.ts cuts a long K into slices.
import type { Runtime } from "../runtime/runtime.ts";
import { onScratch } from "../runtime/autotune.ts";
import type { DType } from "../runtime/dtype.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { requireDtype, requireSameDtype, ShapeError } from "./wgsl.ts";
import { matmulKernel, type MatmulTensors } from "./matmul/kernel.ts";
import { workgroupTile } from "./matmul/plan.ts";
import { reduceSlices, sliceShape, splitFactor } from "./matmul/splitk.ts";

export { matmulKernel } from "./matmul/kernel.ts";
export { sharedVec4 } from "./matmul/shared.ts";

export type Activation = "none" | "gelu" | "relu";

export interface MatmulShape {
  batch: number;
  m: number;
  n: number;
  k: number;
  /** A stored as (K, M) instead of (M, K). */
  transA: boolean;
  /** B stored as (N, K) instead of (K, N). */
  transB: boolean;
  aOffset: number;
  bOffset: number;
  cOffset: number;
  /** Elements between consecutive stored rows (for a contiguous operand: its width). */
  lda: number;
  ldb: number;
  ldc: number;
  /** Batch entry z is the pair (z / inner, z % inner): a (B, H, rows, cols) view has inner
   * H. Contiguous batches have inner 1. */
  inner: number;
  /** Elements between consecutive outer batch entries; 0 broadcasts (shared weights). */
  aBatchStride: number;
  bBatchStride: number;
  cBatchStride: number;
  /** Elements between consecutive inner batch entries. */
  aInnerStride: number;
  bInnerStride: number;
  cInnerStride: number;
  bias: boolean;
  biasOffset: number;
  act: Activation;
  /** Also store the pre-activation values (needed for the activation's gradient). */
  preact: boolean;
  /** C += result instead of C = result. */
  accumulate: boolean;
  dtype: DType;
}

export interface MatmulTiling {
  /** "register": each invocation loads its own A and B (any adapter). "subgroup": lanes of
   * a subgroup share the A values they load through subgroupShuffle (8x fewer A loads).
   * "shared": workgroup tiles of A and B staged in shared memory (what real GPUs want). */
  kind: "register" | "subgroup" | "shared";
  /** Rows per invocation (register) or row groups of 8 per subgroup (subgroup). */
  tm: number;
  /** Columns per invocation, a multiple of 4. */
  tn: number;
  /** Workgroup layout: invocations (register) or subgroups (subgroup) along N and M. */
  wgx: number;
  wgy: number;
  /**
   * Split K into this many slices (rounded down to a divisor of K), each a workgroup grid of
   * its own, summed by a second pass (kernels/matmul_splitk.ts); f32, unbatched products only.
   */
  splitK?: number;
}

/** Picks the kernel and tile by adapter and problem size (measured: `heatformer bench kernels`). */
export function chooseTiling(
  s: MatmulShape,
  gpu: { software: boolean; subgroups: boolean },
): MatmulTiling {
  if (gpu.software && gpu.subgroups) {
    // lavapipe: a subgroup of 8 lanes is one AVX2 vector. Accumulators beyond the 16 ymm
    // registers spill, so per-lane tiles stay small, 4 columns wide, in one-subgroup
    // workgroups: 24 rows for large products (best of a sweep at 1024^3: 31-32 GFLOP/s),
    // 16 for the training shapes (a sweep over the reference step's twelve products:
    // 18-21 GFLOP/s against 10-18 for wider tiles or 2-8 subgroups per workgroup).
    // A single row (bias gradients, 1^T G): one column strip of 4 per lane, no sharing.
    if (s.m === 1) return { kind: "register", tm: 1, tn: 4, wgx: 8, wgy: 1 };
    const tm = s.m * s.n >= 1024 * 512 ? 3 : s.m >= 16 ? 2 : 1;
    return { kind: "subgroup", tm, tn: 4, wgx: 1, wgy: 1 };
  }
  if (gpu.software) {
    const tiles = Math.ceil(s.m / 64) * Math.ceil(s.n / 64) * s.batch;
    return tiles >= 4
      ? { kind: "register", tm: 16, tn: 8, wgx: 4, wgy: 4 }
      : { kind: "register", tm: 4, tn: 4, wgx: 8, wgy: 8 };
  }
  // Real GPUs (where the autotuner starts; it measures the alternatives): tiles staged in
  // workgroup memory, 128 x 128 (8 x 8 each) once there are enough of them to fill a big GPU
  // twice over, else 64 x 64 (4 x 4 each) with split-K where M x N gives too few tiles and K
  // is long: at least 256 workgroups in all, slices of at least 256.
  if (Math.ceil(s.m / 128) * Math.ceil(s.n / 128) * s.batch >= 256) {
    return { kind: "shared", tm: 8, tn: 8, wgx: 16, wgy: 16 };
  }
  const tiles = Math.ceil(s.m / 64) * Math.ceil(s.n / 64) * s.batch;
  const splitK = s.batch === 1 && s.dtype === "f32" && tiles < 128
    ? Math.min(Math.ceil(256 / tiles), Math.floor(s.k / 256))
    : 1;
  return { kind: "shared", tm: 4, tn: 4, wgx: 16, wgy: 16, ...(splitK > 1 ? { splitK } : {}) };
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: Tensor;
  act?: Activation;
  /** Write the pre-activation into this tensor (same shape as the output). */
  preact?: Tensor;
  /** Accumulate into this existing output instead of allocating one. */
  out?: Tensor;
  accumulate?: boolean;
  tiling?: MatmulTiling;
}

/** A stored operand as matmul sees it: a batch of (r, c) matrices, rows `ld` apart. */
interface MatLayout {
  batch: number;
  r: number;
  c: number;
  lead: number[];
  ld: number;
  /** Batch entry z at offset (z / inner) * sOuter + (z % inner) * sInner. */
  inner: number;
  sOuter: number;
  sInner: number;
}

/**
 * Reads a tensor as a batch of matrices: any contiguous tensor, or a strided view of at most
 * 4 dimensions, (B, H, rows, cols), with unit stride along cols (the head-major view of a
 * packed attention projection, for instance).
 */
function mat(op: string, t: Tensor): MatLayout {
  if (t.rank < 2) throw new ShapeError(op, "operands need at least 2 dimensions", t);
  const lead = t.shape.slice(0, -2);
  const batch = lead.reduce((a, b) => a * b, 1);
  const r = t.shape.at(-2)!, c = t.shape.at(-1)!;
  if (t.isContiguous) return { batch, r, c, lead, ld: c, inner: 1, sOuter: r * c, sInner: 0 };
  if (t.strides.at(-1) !== 1 && c > 1) {
    throw new ShapeError(op, "a strided operand needs unit stride along its last dimension", t);
  }
  if (t.rank > 4) throw new ShapeError(op, "strided operands have at most 4 dimensions", t);
  const st = t.strides, ld = st[t.rank - 2];
  if (t.rank === 2) return { batch, r, c, lead, ld, inner: 1, sOuter: 0, sInner: 0 };
  if (t.rank === 3) return { batch, r, c, lead, ld, inner: 1, sOuter: st[0], sInner: 0 };
  return { batch, r, c, lead, ld, inner: t.shape[1], sOuter: st[0], sInner: st[1] };
}

/** Batch strides of a layout for a common (outer, inner) split; 0 for a shared operand. */
function batchStrides(
  op: string,
  t: Tensor,
  l: MatLayout,
  inner: number,
): { outer: number; inner: number } {
  if (l.batch === 1) return { outer: 0, inner: 0 };
  if (l.inner === inner) return { outer: l.sOuter, inner: l.sInner };
  // An operand whose batch is one run of equal strides splits any way.
  if (l.inner === 1) return { outer: inner * l.sOuter, inner: l.sOuter };
  throw new ShapeError(
    op,
    `batch layout (inner ${l.inner}) differs from the others' (${inner})`,
    t,
  );
}

/**
 * Records C = op(A) @ op(B) (+ bias, activation). A: (..., M, K) or (..., K, M) with transA;
 * B: (..., K, N), or (..., N, K) with transB, or 2-D (shared across A's batch).
 */
export function matmul(rt: Runtime, a: Tensor, b: Tensor, o: MatmulOptions = {}): Tensor {
  const op = "matmul";
  requireSameDtype(op, a, b);
  requireDtype(op, a, ["f32", "f16"]);
  if (a.dtype === "f16" && !rt.gpu.f16) {
    throw new ShapeError(op, "f16 needs the adapter's shader-f16 feature", a);
  }
  const A = mat(op, a), B = mat(op, b);
  const [m, k] = o.transA ? [A.c, A.r] : [A.r, A.c];
  const [kb, n] = o.transB ? [B.c, B.r] : [B.r, B.c];
  if (k !== kb) {
    throw new ShapeError(
      op,
      `inner dimensions differ (${k} vs ${kb}; transA=${!!o.transA}, transB=${!!o.transB})`,
      a,
      b,
    );
  }
  if (B.batch !== 1 && B.batch !== A.batch) {
    throw new ShapeError(op, "batch dimensions differ", a, b);
  }
  if (B.batch > 1 && A.batch === 1 && a.rank === 2) {
    throw new ShapeError(op, "a 2-D left operand cannot broadcast over B's batch", a, b);
  }
  if (o.bias && (o.bias.size !== n || o.bias.dtype !== a.dtype)) {
    throw new ShapeError(op, `bias must have ${n} elements of ${a.dtype}`, o.bias);
  }
  const outShape = [...A.lead, m, n];
  const c = o.out ?? rt.empty(outShape, a.dtype, "matmul.out");
  const C = c.isContiguous
    ? { batch: A.batch, r: m, c: n, lead: A.lead, ld: n, inner: 1, sOuter: m * n, sInner: 0 }
    : mat(op, c);
  if (c.size !== A.batch * m * n || C.r !== m || C.c !== n || C.batch !== A.batch) {
    throw new ShapeError(op, `output must have shape ${JSON.stringify(outShape)}`, c);
  }
  if (o.preact && (o.preact.size !== c.size || !o.preact.isContiguous || !c.isContiguous)) {
    throw new ShapeError(op, "preact must match a contiguous output", o.preact, c);
  }
  // One (outer, inner) batch split for all three operands.
  const inner = [A, B, C].find((l) => l.batch > 1 && l.inner > 1)?.inner ?? 1;
  const sa = batchStrides(op, a, A, inner), sb = batchStrides(op, b, B, inner);
  const sc = batchStrides(op, c, C, inner);
  const s: MatmulShape = {
    batch: A.batch,
    m,
    n,
    k,
    transA: !!o.transA,
    transB: !!o.transB,
    aOffset: a.bindOffset,
    bOffset: b.bindOffset,
    cOffset: c.bindOffset,
    lda: A.ld,
    ldb: B.ld,
    ldc: C.ld,
    inner,
    aBatchStride: sa.outer,
    bBatchStride: sb.outer,
    cBatchStride: sc.outer,
    aInnerStride: sa.inner,
    bInnerStride: sb.inner,
    cInnerStride: sc.inner,
    bias: !!o.bias,
    biasOffset: o.bias?.bindOffset ?? 0,
    act: o.act ?? "none",
    preact: !!o.preact,
    accumulate: !!o.accumulate,
    dtype: a.dtype,
  };
  if (m === 0 || n === 0) return c;
  const operands = { a, b, c, bias: o.bias, preact: o.preact };
  dispatchMatmul(rt, s, o.tiling ?? pickTiling(rt, s, operands), operands);
  return c;
}

/** Records the product with tiling `t`: one kernel, or split-K slices and their sum. */
function dispatchMatmul(rt: Runtime, s: MatmulShape, t: MatmulTiling, x: MatmulTensors): void {
  const slices = s.batch === 1 && s.dtype === "f32" ? splitFactor(s.k, t.splitK ?? 1) : 1;
  if (slices <= 1) return rt.run(matmulKernel(s, t, x));
  const partials = rt.empty([slices, s.m, s.n], "f32", "matmul.partials");
  rt.run(matmulKernel(sliceShape(s, slices, partials), t, { a: x.a, b: x.b, c: partials }));
  reduceSlices(rt, s, slices, { partials, c: x.c, bias: x.bias, preact: x.preact });
  rt.dispose(partials);
}

/** Workgroup tiles tried for big GPUs: 64 x 64 (4 x 4 each) and 128 x 128 (8 x 8 each). */
const GPU_TILES: MatmulTiling[] = [
  { kind: "shared", tm: 4, tn: 4, wgx: 16, wgy: 16 },
  { kind: "shared", tm: 8, tn: 8, wgx: 16, wgy: 16 },
];

/**
 * What the autotuner times for a product: the heuristic's choice, then each big-GPU tile with
 * split-K factors that leave slices of at least 128 and at most 2048 workgroups in all.
 */
export function tilingCandidates(s: MatmulShape, heuristic: MatmulTiling): MatmulTiling[] {
  const out = [heuristic];
  for (const tile of GPU_TILES) {
    const { rows, cols } = workgroupTile(tile);
    const tiles = Math.ceil(s.m / rows) * Math.ceil(s.n / cols) * s.batch;
    out.push(tile);
    if (s.batch !== 1 || s.dtype !== "f32") continue;
    for (const splitK of [2, 4, 8, 16, 32]) {
      if (s.k / splitK >= 128 && tiles * splitK <= 2048) out.push({ ...tile, splitK });
    }
  }
  const seen = new Set<string>();
  return out.filter((t) => !seen.has(JSON.stringify(t)) && !!seen.add(JSON.stringify(t)));
}

/** The autotuner's key: what the tiling's speed depends on (not offsets or the epilogue). */
function tuneKey(s: MatmulShape): string {
  return `matmul ${s.dtype} ${s.batch}x${s.m}x${s.n}x${s.k}${s.transA ? " tA" : ""}${
    s.transB ? " tB" : ""
  } ld ${s.lda},${s.ldb},${s.ldc} inner ${s.inner}`;
}

/** The heuristic tiling, or the autotuner's measured one for this shape once it has it. */
function pickTiling(rt: Runtime, s: MatmulShape, x: MatmulTensors): MatmulTiling {
  const heuristic = chooseTiling(s, {
    ...rt.gpu,
    subgroups: rt.gpu.subgroups && rt.useSubgroups,
  });
  if (!rt.tuner) return heuristic;
  const choice = rt.tuner.choose({
    key: tuneKey(s),
    candidates: tilingCandidates(s, heuristic).map((t) => JSON.stringify(t)),
    prepare: (rt) => onScratch(rt, { ...x }, (sx, t) => dispatchMatmul(rt, s, JSON.parse(t), sx)),
  });
  return choice ? JSON.parse(choice) : heuristic;
}

/** Plain TypeScript reference (tests only): (batch, M, K) x (batch|1, K, N). */
export function matmulReference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  batch: number,
  m: number,
  n: number,
  k: number,
  transA = false,
  transB = false,
  bBroadcast = false,
): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const ao = z * m * k, bo = bBroadcast ? 0 : z * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) {
          const av = transA ? a[ao + p * m + i] : a[ao + i * k + p];
          const bv = transB ? b[bo + j * k + p] : b[bo + p * n + j];
          acc += av * bv;
        }
        out[z * m * n + i * n + j] = acc;
      }
    }
  }
  return out;
}
