// The register family (any adapter): each invocation owns a TM x TN block of C in vec4
// accumulators and loads its own A and B, walking K four at a time; vec4 loads wherever the
// layout allows (on llvmpipe every storage load is per-lane scalar code with a bounds check,
// so loads, not FMAs, bound the kernel). Its K loop (`kLoop`) also serves the subgroup family
// (./subgroup.ts), whose lanes share the A values they load through subgroupShuffle.
import type { MatmulShape, MatmulTiling } from "../matmul.ts";
import { type Family, type Plan, SUBGROUP } from "./plan.ts";

/** Operands loaded as vec4s: along K (plain A, transposed B) or along M / N, when the
 * operand's offsets and strides (and, along M / N, its size and TM) are multiples of 4. */
export function registerVec4(s: MatmulShape, t: MatmulTiling): { a: boolean; b: boolean } {
  const al = (x: number) => x % 4 === 0;
  return {
    a: s.transA
      ? al(s.m) && al(s.lda) && al(s.aOffset) && al(s.aBatchStride) && al(s.aInnerStride) &&
        al(t.tm)
      : al(s.lda) && al(s.aOffset) && al(s.aBatchStride) && al(s.aInnerStride),
    b: s.transB
      ? al(s.ldb) && al(s.bOffset) && al(s.bBatchStride) && al(s.bInnerStride)
      : al(s.n) && al(s.ldb) && al(s.bOffset) && al(s.bBatchStride) && al(s.bInnerStride),
  };
}

export const register: Family = {
  vec4: registerVec4,
  decls: () => "",
  entry: ({ t, TN, TM }) =>
    `@compute @workgroup_size(${t.wgx}, ${t.wgy}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n0 = (wid.x * ${t.wgx}u + lid.x) * ${TN}u;
  let m0 = (wid.y * ${t.wgy}u + lid.y) * ${TM}u;`,
  body: (p) => kLoop(p, false),
};

/** WGSL element (or, bound as vec4, [element / 4][element % 4]) of a storage array. */
const el = (name: string, vec: boolean, e: string) =>
  vec ? `${name}[(${e}) / 4u][(${e}) % 4u]` : `${name}[${e}]`;

/** Scalar load of A(row ra_i, k) for a WGSL k expression. */
function aAt(p: Plan, i: number, k: string): string {
  const { s } = p;
  return p.f(el(
    "A",
    p.aVec,
    s.transA ? `aBase + (${k}) * ${s.lda}u + ra${i}` : `aBase + ra${i} * ${s.lda}u + ${k}`,
  ));
}

/** Scalar load of B(k, col cb_j) for a WGSL k expression. */
function bAt(p: Plan, k: string, j: number): string {
  const { s } = p;
  return p.f(el(
    "B",
    p.bVec,
    s.transB ? `bBase + cb${j} * ${s.ldb}u + ${k}` : `bBase + (${k}) * ${s.ldb}u + cb${j}`,
  ));
}

/** Load lines of one 4-k step: vectors over k first (head), the rest before their k. */
interface Step {
  head: string[];
  perK: string[][];
}

/** A's loads of a 4-k step; returns a(loaded row i, kk). */
function loadA(p: Plan, st: Step): string[][] {
  const { s, v4 } = p;
  const aL: string[][] = [];
  if (p.aVec && !s.transA) {
    for (let i = 0; i < p.loadRows; i++) {
      st.head.push(`    let av${i} = ${v4(`A[aBase4 + ra${i} * ${s.lda / 4}u + kv]`)};`);
    }
    for (let i = 0; i < p.loadRows; i++) aL.push([0, 1, 2, 3].map((kk) => `av${i}[${kk}]`));
  } else if (p.aVec && s.transA) {
    for (let kk = 0; kk < 4; kk++) {
      for (let q = 0; q < p.TM / 4; q++) {
        const col = p.clampM(`m0 / 4u + ${q}u`, p.M / 4 - 1);
        st.perK[kk].push(
          `    let at${kk}_${q} = ${v4(`A[aBase4 + (k + ${kk}u) * ${s.lda / 4}u + ${col}]`)};`,
        );
      }
    }
    for (let i = 0; i < p.TM; i++) {
      aL.push([0, 1, 2, 3].map((kk) => `at${kk}_${Math.floor(i / 4)}[${i % 4}]`));
    }
  } else {
    for (let i = 0; i < p.loadRows; i++) {
      for (let kk = 0; kk < 4; kk++) {
        st.perK[kk].push(`    let as${i}_${kk} = ${aAt(p, i, `k + ${kk}u`)};`);
      }
    }
    for (let i = 0; i < p.loadRows; i++) aL.push([0, 1, 2, 3].map((kk) => `as${i}_${kk}`));
  }
  return aL;
}

/** B's loads of a 4-k step; returns b(kk, p), a vec4 over 4 columns. */
function loadB(p: Plan, st: Step): string[][] {
  const { s, v4, P } = p;
  const bE: string[][] = [];
  const vecs = (item: (kk: number, q: number) => string) => {
    for (let kk = 0; kk < 4; kk++) bE.push([...Array(P).keys()].map((q) => item(kk, q)));
  };
  const cols = (name: (kk: number, j: number) => string) => (kk: number, q: number) =>
    `vec4<f32>(${[0, 1, 2, 3].map((e) => name(kk, 4 * q + e)).join(", ")})`;
  if (p.bVec && !s.transB) {
    for (let kk = 0; kk < 4; kk++) {
      for (let q = 0; q < P; q++) {
        const col = p.clampN(`n0 / 4u + ${q}u`, p.N / 4 - 1);
        st.perK[kk].push(
          `    let bv${kk}_${q} = ${v4(`B[bBase4 + (k + ${kk}u) * ${s.ldb / 4}u + ${col}]`)};`,
        );
      }
    }
    vecs((kk, q) => `bv${kk}_${q}`);
  } else if (p.bVec && s.transB) {
    for (let j = 0; j < p.TN; j++) {
      st.head.push(`    let bc${j} = ${v4(`B[bBase4 + cb${j} * ${s.ldb / 4}u + kv]`)};`);
    }
    vecs(cols((kk, j) => `bc${j}[${kk}]`));
  } else {
    for (let kk = 0; kk < 4; kk++) {
      for (let j = 0; j < p.TN; j++) {
        st.perK[kk].push(`    let bs${kk}_${j} = ${bAt(p, `k + ${kk}u`, j)};`);
      }
    }
    vecs(cols((kk, j) => `bs${kk}_${j}`));
  }
  return bE;
}

/** The body of one step of 4 consecutive k: loads (issued as late as they can be, which keeps
 * register pressure low), then TM x P vec4 FMAs per k. With `shuffle`, the rows of C come
 * from the subgroup's lanes: row 8g + lane is loaded row g of that lane. */
function kStep4(p: Plan, shuffle: boolean): string[] {
  const st: Step = { head: [], perK: [[], [], [], []] };
  const aL = loadA(p, st);
  const aE: string[][] = [];
  if (!shuffle) aE.push(...aL);
  else {
    for (let g = 0; g < p.t.tm; g++) {
      for (let lane = 0; lane < SUBGROUP; lane++) {
        aE.push([0, 1, 2, 3].map((kk) => `subgroupShuffle(${aL[g][kk]}, ${lane}u)`));
      }
    }
  }
  const bE = loadB(p, st);
  const b = [...st.head];
  for (let kk = 0; kk < 4; kk++) {
    b.push(...st.perK[kk]);
    for (let q = 0; q < p.P; q++) b.push(`    let bb${kk}_${q} = ${bE[kk][q]};`);
    for (let i = 0; i < p.TM; i++) {
      b.push(`    let ae${i}_${kk} = vec4<f32>(${aE[i][kk]});`);
      for (let q = 0; q < p.P; q++) {
        b.push(`    acc${i}_${q} = fma(ae${i}_${kk}, bb${kk}_${q}, acc${i}_${q});`);
      }
    }
  }
  return b;
}

/** The last K % 4 values of k, one at a time with scalar loads. */
function kTail(p: Plan, shuffle: boolean): string[] {
  const K4 = Math.floor(p.K / 4);
  const L = [`  for (var k = ${K4 * 4}u; k < ${p.K}u; k++) {`];
  for (let i = 0; i < p.loadRows; i++) L.push(`    let a${i} = ${aAt(p, i, "k")};`);
  const rowsA: string[] = [];
  for (let i = 0; i < p.TM; i++) {
    if (!shuffle) rowsA.push(`a${i}`);
    else {
      const g = Math.floor(i / SUBGROUP), lane = i % SUBGROUP;
      L.push(`    let t${i} = subgroupShuffle(a${g}, ${lane}u);`);
      rowsA.push(`t${i}`);
    }
  }
  for (let q = 0; q < p.P; q++) {
    L.push(
      `    let b${q} = vec4<f32>(${[0, 1, 2, 3].map((e) => bAt(p, "k", 4 * q + e)).join(", ")});`,
    );
  }
  for (let i = 0; i < p.TM; i++) {
    for (let q = 0; q < p.P; q++) {
      L.push(`    acc${i}_${q} = fma(vec4<f32>(${rowsA[i]}), b${q}, acc${i}_${q});`);
    }
  }
  L.push(`  }`);
  return L;
}

/** The K loop of the register and (with `shuffle`) subgroup families: 4 k a step, then the
 * rest one at a time. */
export function kLoop(p: Plan, shuffle: boolean): string[] {
  const K4 = Math.floor(p.K / 4);
  const L: string[] = [];
  if (K4 > 0) {
    L.push(`  for (var kv = 0u; kv < ${K4}u; kv++) {`, `    let k = kv * 4u;`);
    L.push(...kStep4(p, shuffle), `  }`);
  }
  if (p.K % 4 !== 0) L.push(...kTail(p, shuffle));
  return L;
}
