// What every matmul kernel family's WGSL is built from: the product (MatmulShape), the tiling,
// and the facts derived from them once (rows and columns per invocation, which operands load
// as vec4s, where this invocation's rows and columns lie, the clamps), plus the interface a
// family implements (./register.ts, ./subgroup.ts, ./shared.ts; ./kernel.ts joins them).
import { wgslType } from "../../runtime/dtype.ts";
import type { MatmulShape, MatmulTiling } from "../matmul.ts";

/** Lanes of the subgroup family's subgroups. */
export const SUBGROUP = 8;

/** Rows (M) and columns (N) of C covered by one workgroup. */
export function workgroupTile(t: MatmulTiling): { rows: number; cols: number } {
  return t.kind === "subgroup"
    ? { rows: t.wgy * SUBGROUP * t.tm, cols: t.wgx * SUBGROUP * t.tn }
    : { rows: t.wgy * t.tm, cols: t.wgx * t.tn };
}

/** One kernel family: how it binds A and B, declares, enters and walks K. */
export interface Family {
  /** Which of A and B the family reads as vec4s for this product and tiling. */
  vec4(s: MatmulShape, t: MatmulTiling): { a: boolean; b: boolean };
  /** Module-scope declarations (workgroup tiles), or "". */
  decls(p: Plan): string;
  /** `@compute` entry point up to the definitions of n0 and m0 (this invocation's origin). */
  entry(p: Plan): string;
  /** The K loop: accumulates acc{i}_{p} (see `prologue`) over all of K. */
  body(p: Plan): string[];
}

export interface Plan {
  s: MatmulShape;
  t: MatmulTiling;
  M: number;
  N: number;
  K: number;
  /** WGSL type of the stored operands. */
  T: string;
  /** Rows of C per invocation: TM of its own (register, shared), or 8 x tm shared (subgroup). */
  TM: number;
  /** Columns of C per invocation, and its vec4 accumulators per row (TN / 4). */
  TN: number;
  P: number;
  /** Rows this invocation loads A from: its own TM, or (subgroup) tm rows lane + 8g. */
  loadRows: number;
  tile: { rows: number; cols: number };
  /** Rows of C per run of consecutive rows of an invocation (the shared family interleaves). */
  G: number;
  aVec: boolean;
  bVec: boolean;
  cVec: boolean;
  /** Offset from m0 of this invocation's row i, and from n0 of its column vector p. */
  rowOff(i: number): number;
  colOff(p: number): number;
  /** min(e, hi) where the tiling is not exact along M (N); exact tilings need no clamps. */
  clampM(e: string, hi: number): string;
  clampN(e: string, hi: number): string;
  /** A stored value (or vec4) as f32. */
  f(e: string): string;
  v4(e: string): string;
}

/** The plan of a product under a tiling, with the operands' vec4 loads `vec`. */
export function plan(s: MatmulShape, t: MatmulTiling, vec: { a: boolean; b: boolean }): Plan {
  const { m: M, n: N, k: K } = s;
  const sub = t.kind === "subgroup", shared = t.kind === "shared";
  const al = (x: number) => x % 4 === 0;
  const TM = sub ? SUBGROUP * t.tm : t.tm;
  const tile = workgroupTile(t);
  const exactM = M % tile.rows === 0, exactN = N % tile.cols === 0;
  // Register and subgroup kernels own TM contiguous rows and TN contiguous columns. The shared
  // kernel interleaves: runs of G (4) rows and of 4 columns, the invocations of the workgroup
  // side by side within each run, so that its vec4 reads of the workgroup tiles are consecutive
  // across neighbouring invocations (no bank conflicts) and its stores coalesce.
  const G = shared ? (TM % 4 === 0 ? 4 : TM) : TM;
  return {
    s,
    t,
    M,
    N,
    K,
    T: wgslType(s.dtype),
    TM,
    TN: t.tn,
    P: t.tn / 4,
    loadRows: sub ? t.tm : TM,
    tile,
    G,
    aVec: vec.a,
    bVec: vec.b,
    cVec: al(N) && al(s.ldc) && al(s.cOffset) && al(s.cBatchStride) && al(s.cInnerStride),
    rowOff: (i) => Math.floor(i / G) * t.wgy * G + (i % G),
    colOff: (p) => (shared ? p * t.wgx * 4 : 4 * p),
    clampM: (e, hi) => (exactM ? e : `min(${e}, ${hi}u)`),
    clampN: (e, hi) => (exactN ? e : `min(${e}, ${hi}u)`),
    f: (e) => (s.dtype === "f32" ? e : `f32(${e})`),
    v4: (e) => (s.dtype === "f32" ? e : `vec4<f32>(${e})`),
  };
}
