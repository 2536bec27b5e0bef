// matmul: C[b] = op(A[b]) @ op(B[b]) (+ bias) (activation), batched and strided, either
// operand transposed, optionally accumulating into C (gradient accumulation).
//
// Register tiling: each invocation owns a TM x TN block of C held in vec4 accumulators and
// walks K four at a time. Loads are vec4 wherever the layout allows (on llvmpipe every
// storage load is per-lane scalar code with a bounds check, so loads, not FMAs, bound the
// kernel); out-of-range rows/columns are clamped on load and skipped on store, so any shape
// works. Shapes are baked in as constants.
import type { Runtime } from "../runtime/runtime.ts";
import { onScratch } from "../runtime/autotune.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { type DType, wgslType } from "../runtime/dtype.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { binding, ERF_WGSL, header, requireDtype, requireSameDtype, ShapeError } from "./wgsl.ts";
import { reduceSlices, sliceShape, splitFactor } from "./matmul_splitk.ts";

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

const SUBGROUP = 8;

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

/** K-tile depth of the shared-memory kernel. */
const SHARED_K = 16;

/** Rows (M) and columns (N) of C covered by one workgroup. */
function workgroupTile(t: MatmulTiling): { rows: number; cols: number } {
  return t.kind === "subgroup"
    ? { rows: t.wgy * SUBGROUP * t.tm, cols: t.wgx * SUBGROUP * t.tn }
    : { rows: t.wgy * t.tm, cols: t.wgx * t.tn };
}

export function matmulKernel(
  s: MatmulShape,
  t: MatmulTiling,
  tensors: { a: Tensor; b: Tensor; c: Tensor; bias?: Tensor; preact?: Tensor },
): KernelSpec {
  const { m: M, n: N, k: K } = s;
  const T = wgslType(s.dtype);
  const sub = t.kind === "subgroup";
  // Rows held per invocation: TM of its own (register), or 8 x tm shared (subgroup).
  const TM = sub ? SUBGROUP * t.tm : t.tm;
  const TN = t.tn;
  const P = TN / 4;
  const al = (x: number) => x % 4 === 0;
  // A loads: per-invocation rows (register) or one row per lane and group (subgroup).
  const shared = t.kind === "shared";
  const aVec = shared
    ? sharedVec4(s).a
    : s.transA
    ? !sub && al(M) && al(s.lda) && al(s.aOffset) && al(s.aBatchStride) &&
      al(s.aInnerStride) && al(TM)
    : al(s.lda) && al(s.aOffset) && al(s.aBatchStride) && al(s.aInnerStride);
  const bVec = shared
    ? sharedVec4(s).b
    : s.transB
    ? al(s.ldb) && al(s.bOffset) && al(s.bBatchStride) && al(s.bInnerStride)
    : al(N) && al(s.ldb) && al(s.bOffset) && al(s.bBatchStride) && al(s.bInnerStride);
  const cVec = al(N) && al(s.ldc) && al(s.cOffset) && al(s.cBatchStride) &&
    al(s.cInnerStride);
  const K4 = Math.floor(K / 4);
  const L: string[] = [];
  const v4 = (e: string) => (s.dtype === "f32" ? e : `vec4<f32>(${e})`);
  const f = (e: string) => (s.dtype === "f32" ? e : `f32(${e})`);
  const tile = workgroupTile(t);
  // Exact tilings need no clamps (saves ALU work in the inner loop).
  const exactM = M % tile.rows === 0, exactN = N % tile.cols === 0;
  const clampM = (e: string, hi: number) => (exactM ? e : `min(${e}, ${hi}u)`);
  const clampN = (e: string, hi: number) => (exactN ? e : `min(${e}, ${hi}u)`);

  // Offsets from (m0, n0) of this invocation's row i and of its column vector p. Register
  // and subgroup kernels own TM contiguous rows and TN contiguous columns. The shared kernel
  // interleaves: runs of G (4) rows and of 4 columns, the invocations of the workgroup side by
  // side within each run, so that its vec4 reads of the workgroup tiles are consecutive across
  // neighbouring invocations (no bank conflicts) and its stores coalesce.
  const G = shared ? (TM % 4 === 0 ? 4 : TM) : TM;
  const rowOff = (i: number) => Math.floor(i / G) * t.wgy * G + (i % G);
  const colOff = (p: number) => (shared ? p * t.wgx * 4 : 4 * p);
  // Rows this invocation loads A from: its own TM rows, or (subgroup) row lane + 8g.
  const loadRows = sub ? t.tm : TM;
  for (let i = 0; i < loadRows; i++) {
    const r = sub ? `m0 + ${i * SUBGROUP}u + lane` : `m0 + ${rowOff(i)}u`;
    L.push(`  let ra${i} = ${clampM(r, M - 1)};`);
  }
  for (let j = 0; j < TN; j++) {
    L.push(`  let cb${j} = ${clampN(`n0 + ${colOff(j >> 2) + (j & 3)}u`, N - 1)};`);
  }
  for (let i = 0; i < TM; i++) {
    for (let p = 0; p < P; p++) L.push(`  var acc${i}_${p} = vec4<f32>(0.0);`);
  }

  // Scalar element loads of A(row ra_i, k) and B(k, col cb_j) for a WGSL k expression.
  // (An operand bound as vec4 is indexed as [element / 4][element % 4].)
  const el = (name: string, vec: boolean, e: string) =>
    vec ? `${name}[(${e}) / 4u][(${e}) % 4u]` : `${name}[${e}]`;
  const aAt = (i: number, k: string) =>
    f(el(
      "A",
      aVec,
      s.transA ? `aBase + (${k}) * ${s.lda}u + ra${i}` : `aBase + ra${i} * ${s.lda}u + ${k}`,
    ));
  const bAt = (k: string, j: number) =>
    f(el(
      "B",
      bVec,
      s.transB ? `bBase + cb${j} * ${s.ldb}u + ${k}` : `bBase + (${k}) * ${s.ldb}u + cb${j}`,
    ));

  /** The k-step body for 4 consecutive k. Loads that are vectors over k come first; the
   * rest are issued just before the FMAs of their k, which keeps register pressure low. */
  const body4 = (): string[] => {
    const head: string[] = [];
    const perK: string[][] = [[], [], [], []];
    const aL: string[][] = [];
    if (aVec && !s.transA) {
      for (let i = 0; i < loadRows; i++) {
        head.push(`    let av${i} = ${v4(`A[aBase4 + ra${i} * ${s.lda / 4}u + kv]`)};`);
      }
      for (let i = 0; i < loadRows; i++) aL.push([0, 1, 2, 3].map((kk) => `av${i}[${kk}]`));
    } else if (aVec && s.transA) {
      for (let kk = 0; kk < 4; kk++) {
        for (let q = 0; q < TM / 4; q++) {
          perK[kk].push(
            `    let at${kk}_${q} = ${
              v4(
                `A[aBase4 + (k + ${kk}u) * ${s.lda / 4}u + ${
                  clampM(`m0 / 4u + ${q}u`, M / 4 - 1)
                }]`,
              )
            };`,
          );
        }
      }
      for (let i = 0; i < TM; i++) {
        aL.push([0, 1, 2, 3].map((kk) => `at${kk}_${Math.floor(i / 4)}[${i % 4}]`));
      }
    } else {
      for (let i = 0; i < loadRows; i++) {
        for (let kk = 0; kk < 4; kk++) {
          perK[kk].push(`    let as${i}_${kk} = ${aAt(i, `k + ${kk}u`)};`);
        }
      }
      for (let i = 0; i < loadRows; i++) aL.push([0, 1, 2, 3].map((kk) => `as${i}_${kk}`));
    }
    // Rows of C owned by this invocation: a(i, kk); subgroup rows come by shuffle.
    const aE: string[][] = [];
    if (!sub) aE.push(...aL);
    else {
      for (let g = 0; g < t.tm; g++) {
        for (let lane = 0; lane < SUBGROUP; lane++) {
          aE.push([0, 1, 2, 3].map((kk) => `subgroupShuffle(${aL[g][kk]}, ${lane}u)`));
        }
      }
    }
    // b(kk, p): vec4 over 4 columns
    const bE: string[][] = [];
    if (bVec && !s.transB) {
      for (let kk = 0; kk < 4; kk++) {
        for (let p = 0; p < P; p++) {
          perK[kk].push(
            `    let bv${kk}_${p} = ${
              v4(
                `B[bBase4 + (k + ${kk}u) * ${s.ldb / 4}u + ${
                  clampN(`n0 / 4u + ${p}u`, N / 4 - 1)
                }]`,
              )
            };`,
          );
        }
      }
      for (let kk = 0; kk < 4; kk++) bE.push([...Array(P).keys()].map((p) => `bv${kk}_${p}`));
    } else if (bVec && s.transB) {
      for (let j = 0; j < TN; j++) {
        head.push(`    let bc${j} = ${v4(`B[bBase4 + cb${j} * ${s.ldb / 4}u + kv]`)};`);
      }
      for (let kk = 0; kk < 4; kk++) {
        bE.push(
          [...Array(P).keys()].map((p) =>
            `vec4<f32>(${[0, 1, 2, 3].map((e) => `bc${4 * p + e}[${kk}]`).join(", ")})`
          ),
        );
      }
    } else {
      for (let kk = 0; kk < 4; kk++) {
        for (let j = 0; j < TN; j++) {
          perK[kk].push(`    let bs${kk}_${j} = ${bAt(`k + ${kk}u`, j)};`);
        }
      }
      for (let kk = 0; kk < 4; kk++) {
        bE.push(
          [...Array(P).keys()].map((p) =>
            `vec4<f32>(${[0, 1, 2, 3].map((e) => `bs${kk}_${4 * p + e}`).join(", ")})`
          ),
        );
      }
    }
    const b = [...head];
    for (let kk = 0; kk < 4; kk++) {
      b.push(...perK[kk]);
      for (let p = 0; p < P; p++) b.push(`    let bb${kk}_${p} = ${bE[kk][p]};`);
      for (let i = 0; i < TM; i++) {
        b.push(`    let ae${i}_${kk} = vec4<f32>(${aE[i][kk]});`);
        for (let p = 0; p < P; p++) {
          b.push(`    acc${i}_${p} = fma(ae${i}_${kk}, bb${kk}_${p}, acc${i}_${p});`);
        }
      }
    }
    return b;
  };

  if (shared) L.push(...sharedBody(s, t, tile, G, f));
  else if (K4 > 0) {
    L.push(`  for (var kv = 0u; kv < ${K4}u; kv++) {`, `    let k = kv * 4u;`, ...body4(), `  }`);
  }
  if (!shared && K % 4 !== 0) {
    L.push(`  for (var k = ${K4 * 4}u; k < ${K}u; k++) {`);
    for (let i = 0; i < loadRows; i++) L.push(`    let a${i} = ${aAt(i, "k")};`);
    const rowsA: string[] = [];
    for (let i = 0; i < TM; i++) {
      if (!sub) rowsA.push(`a${i}`);
      else {
        const g = Math.floor(i / SUBGROUP), lane = i % SUBGROUP;
        L.push(`    let t${i} = subgroupShuffle(a${g}, ${lane}u);`);
        rowsA.push(`t${i}`);
      }
    }
    for (let p = 0; p < P; p++) {
      L.push(
        `    let b${p} = vec4<f32>(${[0, 1, 2, 3].map((e) => bAt("k", 4 * p + e)).join(", ")});`,
      );
    }
    for (let i = 0; i < TM; i++) {
      for (let p = 0; p < P; p++) {
        L.push(`    acc${i}_${p} = fma(vec4<f32>(${rowsA[i]}), b${p}, acc${i}_${p});`);
      }
    }
    L.push(`  }`);
  }

  // Epilogue: bias, pre-activation, activation, accumulate, store.
  for (let p = 0; p < P; p++) {
    if (s.bias) {
      L.push(
        `  let bias${p} = vec4<f32>(${
          [0, 1, 2, 3].map((e) => f(`Bias[${s.biasOffset}u + cb${4 * p + e}]`)).join(", ")
        });`,
      );
    }
  }
  const act = (v: string) =>
    s.act === "gelu"
      ? `vec4<f32>(gelu_(${v}.x), gelu_(${v}.y), gelu_(${v}.z), gelu_(${v}.w))`
      : s.act === "relu"
      ? `max(${v}, vec4<f32>(0.0))`
      : v;
  for (let i = 0; i < TM; i++) {
    L.push(`  if (m0 + ${rowOff(i)}u < ${M}u) {`);
    L.push(`    let row = cBase + (m0 + ${rowOff(i)}u) * ${s.ldc}u;`);
    for (let p = 0; p < P; p++) {
      L.push(`    {`);
      L.push(`      var v = acc${i}_${p}${s.bias ? ` + bias${p}` : ""};`);
      const col = `n0 + ${colOff(p)}u`;
      if (cVec) {
        L.push(`      if (${col} < ${N}u) {`);
        L.push(`        let ci = (row + ${col}) / 4u;`);
        if (s.preact) L.push(`        Pre[ci] = vec4<${T}>(v);`);
        L.push(`        v = ${act("v")};`);
        if (s.accumulate) L.push(`        v += vec4<f32>(C[ci]);`);
        L.push(`        C[ci] = vec4<${T}>(v);`, `      }`);
      } else {
        L.push(`      let w = ${act("v")};`);
        for (let e = 0; e < 4; e++) {
          L.push(`      if (${col} + ${e}u < ${N}u) {`);
          L.push(`        let ci = row + ${col} + ${e}u;`);
          if (s.preact) L.push(`        Pre[ci] = ${T}(v[${e}]);`);
          L.push(
            s.accumulate
              ? `        C[ci] = ${T}(w[${e}] + f32(C[ci]));`
              : `        C[ci] = ${T}(w[${e}]);`,
            `      }`,
          );
        }
      }
      L.push(`    }`);
    }
    L.push(`  }`);
  }

  const binds = [
    binding(0, "A", { dtype: s.dtype }, "read", aVec),
    binding(1, "B", { dtype: s.dtype }, "read", bVec),
    binding(2, "C", { dtype: s.dtype }, "read_write", cVec),
  ];
  const list = [tensors.a, tensors.b, tensors.c];
  if (s.bias) {
    binds.push(binding(list.length, "Bias", { dtype: s.dtype }, "read"));
    list.push(tensors.bias!);
  }
  if (s.preact) {
    binds.push(binding(list.length, "Pre", { dtype: s.dtype }, "read_write", cVec));
    list.push(tensors.preact!);
  }
  // Subgroup kernels: 1-D workgroups (subgroup_invocation_id needs them); subgroup sg of
  // the workgroup covers column block sg % wgx and row block sg / wgx.
  const entry = sub
    ? `@compute @workgroup_size(${t.wgx * t.wgy * SUBGROUP}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
  let sg = li / ${SUBGROUP}u;
  let n0 = (wid.x * ${t.wgx}u + sg % ${t.wgx}u) * ${SUBGROUP * TN}u + lane * ${TN}u;
  let m0 = (wid.y * ${t.wgy}u + sg / ${t.wgx}u) * ${TM}u;`
    : `@compute @workgroup_size(${t.wgx}, ${t.wgy}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${
      shared
        ? `let n0 = wid.x * ${tile.cols}u + lid.x * 4u;
  let m0 = wid.y * ${tile.rows}u + lid.y * ${G}u;`
        : `let n0 = (wid.x * ${t.wgx}u + lid.x) * ${TN}u;
  let m0 = (wid.y * ${t.wgy}u + lid.y) * ${TM}u;`
    }`;
  const code = `${header(s.dtype)}// matmul ${JSON.stringify({ ...s })} ${JSON.stringify(t)}
${binds.join("\n")}
${s.act === "gelu" ? ERF_WGSL : ""}
${shared ? sharedDecls(tile, G) : ""}
${entry}
  let zo = wid.z / ${s.inner}u;
  let zi = wid.z % ${s.inner}u;
  let aBase = ${s.aOffset}u + zo * ${s.aBatchStride}u + zi * ${s.aInnerStride}u;
  let bBase = ${s.bOffset}u + zo * ${s.bBatchStride}u + zi * ${s.bInnerStride}u;
  let cBase = ${s.cOffset}u + zo * ${s.cBatchStride}u + zi * ${s.cInnerStride}u;
  let aBase4 = aBase / 4u;
  let bBase4 = bBase / 4u;
  _ = aBase4; _ = bBase4;
${L.join("\n")}
}
`;
  return {
    // The shape in the name tells profiles and error messages which product this is.
    name: `matmul ${s.batch > 1 ? s.batch + "x" : ""}${M}x${N}x${K}${s.transA ? " tA" : ""}${
      s.transB ? " tB" : ""
    } ${t.kind} ${t.tm}x${t.tn}`,
    code,
    grid: [Math.ceil(N / tile.cols), Math.ceil(M / tile.rows), s.batch],
    bindings: list,
  };
}

/** Workgroup tiles of the shared kernel, K-major: B as vec4 column runs; A as vec4 row runs
 * where invocations own runs of 4 rows (G = 4), else scalars. */
function sharedDecls(tile: { rows: number; cols: number }, G: number): string {
  const a = G === 4
    ? `array<array<vec4<f32>, ${tile.rows / 4}>, ${SHARED_K}>`
    : `array<array<f32, ${tile.rows}>, ${SHARED_K}>`;
  return `var<workgroup> As: ${a};
var<workgroup> Bs: array<array<vec4<f32>, ${tile.cols / 4}>, ${SHARED_K}>;`;
}

/** Operands the shared kernel stages with vec4 loads: 4 consecutive elements along the
 * operand's contiguous dimension, which is a multiple of 4, at aligned offsets and strides. */
export function sharedVec4(s: MatmulShape): { a: boolean; b: boolean } {
  const al = (...xs: number[]) => xs.every((x) => x % 4 === 0);
  return {
    a: al(s.transA ? s.m : s.k, s.lda, s.aOffset, s.aBatchStride, s.aInnerStride),
    b: al(s.transB ? s.k : s.n, s.ldb, s.bOffset, s.bBatchStride, s.bInnerStride),
  };
}

/** One operand's staging into its K-major workgroup tile (rows x 16): which operand, its tile
 * extent along M (A) or N (B), and how it is stored. */
interface Stage {
  x: "A" | "B";
  /** Tile extent along the operand's M or N. */
  n: number;
  /** The operand's size along M or N, and its leading dimension. */
  size: number;
  ld: number;
  /** Stored M/N-contiguous (transposed A, plain B) rather than K-contiguous. */
  mnMajor: boolean;
  /** The workgroup tile holds vec4 runs along M/N (else scalars). */
  tileVec: boolean;
  vec: boolean;
}

/**
 * WGSL staging loop: consecutive invocations read consecutive addresses of the operand's
 * contiguous dimension, scalars or (aligned operands) vec4s; zero outside the matrix.
 */
function stageLines(st: Stage, K: number, nThreads: number, f: (e: string) => string): string[] {
  const SK = SHARED_K, { x, n, ld } = st, base = `${x.toLowerCase()}Base`;
  const origin = x === "A" ? "tm0" : "tn0", sh = `${x}s`;
  const at = (
    lm: string,
  ) => (st.tileVec ? `${sh}[lk][${lm} / 4u][${lm} % 4u]` : `${sh}[lk][${lm}]`);
  const v4 = (e: string) => `vec4<f32>(${e})`;
  const L: string[] = [];
  if (!st.vec) {
    const [lm, lk] = st.mnMajor ? [`e % ${n}u`, `e / ${n}u`] : [`e / ${SK}u`, `e % ${SK}u`];
    const g = st.mnMajor ? `${x}[${base} + kk * ${ld}u + mm]` : `${x}[${base} + mm * ${ld}u + kk]`;
    L.push(
      `    for (var e = tid; e < ${n * SK}u; e += ${nThreads}u) {`,
      `      let lm = ${lm}; let lk = ${lk}; let mm = ${origin} + lm; let kk = kt + lk;`,
      `      ${at("lm")} = select(0.0, ${f(g)}, mm < ${st.size}u && kk < ${K}u);`,
    );
  } else if (st.mnMajor) {
    // vec4 along M/N: one run of 4 columns (or rows) of one k
    L.push(
      `    for (var e = tid; e < ${(n / 4) * SK}u; e += ${nThreads}u) {`,
      `      let lq = e % ${n / 4}u; let lk = e / ${n / 4}u; let mm = ${origin} + lq * 4u;`,
      `      let kk = kt + lk;`,
      `      let v = select(vec4<f32>(0.0), ${
        v4(`${x}[${base}4 + kk * ${ld / 4}u + mm / 4u]`)
      }, mm < ${st.size}u && kk < ${K}u);`,
      st.tileVec
        ? `      ${sh}[lk][lq] = v;`
        : [0, 1, 2, 3].map((c) => `      ${sh}[lk][lq * 4u + ${c}u] = v[${c}];`).join("\n"),
    );
  } else {
    // vec4 along K: 4 consecutive k of one row (column), stored into 4 k rows of the tile
    L.push(
      `    for (var e = tid; e < ${n * (SK / 4)}u; e += ${nThreads}u) {`,
      `      let lm = e / ${SK / 4}u; let k4 = (e % ${SK / 4}u) * 4u; let mm = ${origin} + lm;`,
      `      let kk = kt + k4;`,
      `      let v = select(vec4<f32>(0.0), ${
        v4(`${x}[${base}4 + mm * ${ld / 4}u + kk / 4u]`)
      }, mm < ${st.size}u && kk < ${K}u);`,
      ...[0, 1, 2, 3].map((c) => `      ${at("lm").replace("[lk]", `[k4 + ${c}u]`)} = v[${c}];`),
    );
  }
  L.push(`    }`);
  return L;
}

/**
 * The shared kernel's K loop: the workgroup stages a (rows x 16) tile of A and a (16 x cols)
 * tile of B (stageLines), then each invocation accumulates its TM x TN block from vec4 reads
 * of the tiles.
 */
function sharedBody(
  s: MatmulShape,
  t: MatmulTiling,
  tile: { rows: number; cols: number },
  G: number,
  f: (e: string) => string,
): string[] {
  const K = s.k, SK = SHARED_K, nThreads = t.wgx * t.wgy, vec = sharedVec4(s);
  const L = [
    `  let tid = lid.y * ${t.wgx}u + lid.x;`,
    `  let tm0 = wid.y * ${tile.rows}u;`,
    `  let tn0 = wid.x * ${tile.cols}u;`,
    `  for (var kt = 0u; kt < ${K}u; kt += ${SK}u) {`,
    ...stageLines(
      {
        x: "A",
        n: tile.rows,
        size: s.m,
        ld: s.lda,
        mnMajor: s.transA,
        tileVec: G === 4,
        vec: vec.a,
      },
      K,
      nThreads,
      f,
    ),
    ...stageLines(
      {
        x: "B",
        n: tile.cols,
        size: s.n,
        ld: s.ldb,
        mnMajor: !s.transB,
        tileVec: true,
        vec: vec.b,
      },
      K,
      nThreads,
      f,
    ),
    `    workgroupBarrier();`,
    `    for (var k2 = 0u; k2 < ${SK}u; k2++) {`,
  ];
  const P = t.tn / 4;
  for (let p = 0; p < P; p++) L.push(`      let b${p} = Bs[k2][${p * t.wgx}u + lid.x];`);
  if (G === 4) {
    for (let q = 0; q < t.tm / 4; q++) L.push(`      let a4_${q} = As[k2][${q * t.wgy}u + lid.y];`);
  }
  for (let i = 0; i < t.tm; i++) {
    const a = G === 4 ? `a4_${i >> 2}[${i & 3}]` : `As[k2][lid.y * ${G}u + ${i}u]`;
    L.push(`      let a${i} = vec4<f32>(${a});`);
    for (let p = 0; p < P; p++) L.push(`      acc${i}_${p} = fma(a${i}, b${p}, acc${i}_${p});`);
  }
  L.push(`    }`, `    workgroupBarrier();`, `  }`);
  return L;
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

interface Operands {
  a: Tensor;
  b: Tensor;
  c: Tensor;
  bias?: Tensor;
  preact?: Tensor;
}

/** Records the product with tiling `t`: one kernel, or split-K slices and their sum. */
function dispatchMatmul(rt: Runtime, s: MatmulShape, t: MatmulTiling, x: Operands): void {
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
function pickTiling(rt: Runtime, s: MatmulShape, x: Operands): MatmulTiling {
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
