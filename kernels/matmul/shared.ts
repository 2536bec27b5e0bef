// The shared-memory family (what real GPUs want): the workgroup stages a (rows x 16) tile of A
// and a (16 x cols) tile of B in workgroup memory, K-major, each invocation accumulating its
// TM x TN block of C from vec4 reads of the tiles. An invocation's rows and columns interleave
// with its neighbours' (./plan.ts, rowOff / colOff), so those reads are consecutive across
// invocations and the stores coalesce.
import type { MatmulShape, MatmulTiling } from "../matmul.ts";
import type { Family } from "./plan.ts";

/** K-tile depth of the shared-memory kernel. */
const SHARED_K = 16;

export const shared: Family = {
  vec4: sharedVec4,
  decls: (p) => sharedDecls(p.tile, p.G),
  entry: ({ t, tile, G }) =>
    `@compute @workgroup_size(${t.wgx}, ${t.wgy}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n0 = wid.x * ${tile.cols}u + lid.x * 4u;
  let m0 = wid.y * ${tile.rows}u + lid.y * ${G}u;`,
  body: (p) => sharedBody(p.s, p.t, p.tile, p.G, p.f),
};

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
