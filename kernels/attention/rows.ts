// The portable attention kernels (any adapter): one invocation owns one row; its workgroup of
// `wg` rows of one (batch, head) walks the other side's rows in tiles staged in workgroup
// memory, so each K/V (or Q/dO) row is read from global memory once per `wg` rows instead of
// once per row. Online softmax, O = softmax(Q K^T * scale + mask) V, never materialising the
// (Lq x Lk) scores; the forward saves the log-sum-exp per row and the backward
// (FlashAttention-2's) recomputes probabilities from it: one pass per query row for dQ, one
// per key row for dK and dV. Q, K, V are (B, L, H, D) views with any strides; O, dQ, dK, dV
// are contiguous (B, L, H, D). The rows per workgroup are chosen in ./mod.ts.
import { grid1d } from "../../runtime/kernel.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import type { KernelSpec } from "../../runtime/kernel.ts";
import { binding, f32lit } from "../wgsl.ts";
import { attentionHeader, type Dims, maskExpr } from "./shared.ts";

/** Other-side rows per workgroup-memory tile: two f32 tiles of (rows x d) plus two scalars a
 * row stay within WebGPU's default 16 KiB of workgroup storage. */
function tileRows(d: number, wg: number): number {
  return Math.max(1, Math.min(wg, Math.floor(4096 / (2 * (d + 1)))));
}

/**
 * WGSL prologue of the portable kernels: the workgroup owns rows r0 .. r0 + wg - 1 of one
 * (batch bb, head hh); `i` is this invocation's row (clamped, so that out-of-range rows still
 * reach every barrier) and `live` whether it is real. Extra workgroups of a 2D grid return
 * as a whole, which keeps the barriers in uniform control flow.
 */
function rowBlock(
  rows: number,
  dm: Dims,
  grid: [number, number, number],
  i: string,
  wg: number,
): string {
  const blocks = Math.ceil(rows / wg);
  return `
  let blk = wid.x + wid.y * ${grid[0]}u;
  if (blk >= ${dm.b * dm.h * blocks}u) { return; }
  let r0 = (blk % ${blocks}u) * ${wg}u;
  let hh = (blk / ${blocks}u) % ${dm.h}u;
  let bb = blk / ${blocks * dm.h}u;
  let live = r0 + li < ${rows}u;
  let ${i} = min(r0 + li, ${rows - 1}u);`;
}

/** The query-row passes' K and V tiles: workgroup declarations and the staging of rows t0... */
function kvTiles(
  k: Tensor,
  v: Tensor,
  d: number,
  lk: number,
  wg: number,
): { decls: string; stage: string } {
  const tk = tileRows(d, wg);
  const load = (t: Tensor, name: string) => (r: string, e: string) =>
    `f32(${name}[${rowOffset(t, "bb", r, "hh")} + ${e} * ${t.strides[3]}u])`;
  return {
    decls: `var<workgroup> Ks: array<f32, ${tk * d}>;\nvar<workgroup> Vs: array<f32, ${tk * d}>;`,
    stage: stageTile(tk, d, lk, wg, [["Ks", load(k, "K")], ["Vs", load(v, "V")]]),
  };
}

/** Grid of the portable kernels: one workgroup per `wg` rows of each (batch, head). */
function rowGrid(rows: number, dm: Dims, wg: number): [number, number, number] {
  return grid1d(dm.b * dm.h * Math.ceil(rows / wg), 1);
}

/** WGSL: stage rows t0 .. t0 + TK - 1 (those below \`limit\`) of each (name, tensor, row
 * offset expression) into workgroup array name + "s", f32, row-major (TK x d). */
function stageTile(
  tk: number,
  d: number,
  limit: number,
  wg: number,
  rows: [shared: string, load: (row: string, e: string) => string][],
): string {
  return `
    workgroupBarrier(); // the previous tile is consumed
    for (var t = li; t < ${tk * d}u; t += ${wg}u) {
      let row = t0 + t / ${d}u;
      let e = t % ${d}u;
      if (row < ${limit}u) {
${rows.map(([sh, load]) => `        ${sh}[t] = ${load("row", "e")};`).join("\n")}
      }
    }
    workgroupBarrier();
    let tn = min(${tk}u, ${limit}u - t0);`;
}

/** WGSL: element offset of row `row` (in 0..L) of batch bb, head hh for a (B, L, H, D) view. */
function rowOffset(t: Tensor, bb: string, row: string, hh: string): string {
  const [sb, sl, sh] = t.strides;
  return `(${t.bindOffset}u + ${bb} * ${sb}u + ${row} * ${sl}u + ${hh} * ${sh}u)`;
}

/** The forward's tensors: q, k, v (B, L, H, D) views; out (B, Lq, H, D); lse (B, H, Lq). */
export interface ForwardTensors {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  out: Tensor;
  lse: Tensor;
  mask?: Tensor;
}

/** Backward pass 1's tensors: dout, out, dq (B, Lq, H, D); lse, delta (B, H, Lq). */
export interface DqTensors {
  dout: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  out: Tensor;
  lse: Tensor;
  dq: Tensor;
  delta: Tensor;
  mask?: Tensor;
}

/** Backward pass 2's tensors: dk, dv (B, Lk, H, D); lse and delta from pass 1. */
export interface DkdvTensors {
  dout: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  lse: Tensor;
  delta: Tensor;
  dk: Tensor;
  dv: Tensor;
  mask?: Tensor;
}

/** The portable forward: one invocation per query row, `wg` rows of a (batch, head) per
 * workgroup, K and V tiles staged in workgroup memory, online softmax. */
export function forwardSpec(x: ForwardTensors, dm: Dims, scale: number, wg: number): KernelSpec {
  const { q, k, v, out, lse, mask } = x;
  const { h, lq, lk, d } = dm;
  const grid = rowGrid(lq, dm, wg);
  const tk = tileRows(d, wg);
  const kv = kvTiles(k, v, d, lk, wg);
  const binds = [q, k, v, out, lse];
  const maskDecl = mask ? binding(5, "Mask", mask, "read") : "";
  if (mask) binds.push(mask);
  const code = `${attentionHeader(q, mask)}// attention forward ${JSON.stringify(dm)}
${binding(0, "Q", q, "read")}
${binding(1, "K", k, "read")}
${binding(2, "V", v, "read")}
${binding(3, "O", out, "read_write")}
${binding(4, "Lse", lse, "read_write")}
${maskDecl}
${kv.decls}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${rowBlock(lq, dm, grid, "i", wg)}
  let qo = ${rowOffset(q, "bb", "i", "hh")};
  var qv: array<f32, ${d}>;
  var acc: array<f32, ${d}>;
  for (var e = 0u; e < ${d}u; e++) { qv[e] = f32(Q[qo + e * ${sd(q)}u]) * ${
    f32lit(scale)
  }; acc[e] = 0.0; }
  var m = -3.402823e38;
  var l = 0.0;
  for (var t0 = 0u; t0 < ${lk}u; t0 += ${tk}u) {${kv.stage}
    for (var r = 0u; r < tn; r++) {
      let j = t0 + r;
      var s = ${maskExpr(mask, dm, "i", "j")};
      for (var e = 0u; e < ${d}u; e++) { s = fma(qv[e], Ks[r * ${d}u + e], s); }
      let mn = max(m, s);
      let corr = exp(m - mn);
      let p = exp(s - mn);
      l = l * corr + p;
      for (var e = 0u; e < ${d}u; e++) { acc[e] = fma(p, Vs[r * ${d}u + e], acc[e] * corr); }
      m = mn;
    }
  }
  if (!live) { return; }
  let inv = 1.0 / l;
  let oo = ((bb * ${lq}u + i) * ${h}u + hh) * ${d}u;
  for (var e = 0u; e < ${d}u; e++) { O[oo + e] = ${out.dtype}(acc[e] * inv); }
  Lse[(bb * ${h}u + hh) * ${lq}u + i] = m + log(l);
}
`;
  return { name: "attention", code, grid, bindings: binds };
}

/** WGSL: element offset of row `row` of a contiguous (B, L, H, D) tensor (dO, O). */
function rowC(dm: Dims, bb: string, row: string, hh: string, l: number): string {
  return `(((${bb} * ${l}u + ${row}) * ${dm.h}u + ${hh}) * ${dm.d}u)`;
}

/** The WGSL header of a backward pass and its optional mask binding. */
function passHeader(q: Tensor, mask?: Tensor): { hdr: string; maskB: (i: number) => string } {
  return {
    hdr: attentionHeader(q, mask),
    maskB: (i) => (mask ? binding(i, "Mask", mask, "read") : ""),
  };
}

/** WGSL: stride of a (B, L, H, D) view along D. */
const sd = (t: Tensor) => t.strides[3];

/**
 * Backward pass 1, one invocation per query row: delta_i = dO_i . O_i and
 * dQ_i = scale * sum_j P_ij (dP_ij - delta_i) K_j.
 */
export function dqSpec(x: DqTensors, dm: Dims, scale: number, wg: number): KernelSpec {
  const { dout, q, k, v, out, lse, dq, delta, mask } = x;
  const { h, lq, lk, d } = dm;
  const { hdr, maskB } = passHeader(q, mask);
  const grid = rowGrid(lq, dm, wg);
  const tk = tileRows(d, wg);
  const kv = kvTiles(k, v, d, lk, wg);
  const code = `${hdr}// attention backward dq ${JSON.stringify(dm)}
${binding(0, "DO", dout, "read")}
${binding(1, "Q", q, "read")}
${binding(2, "K", k, "read")}
${binding(3, "V", v, "read")}
${binding(4, "O", out, "read")}
${binding(5, "Lse", lse, "read")}
${binding(6, "DQ", dq, "read_write")}
${binding(7, "Delta", delta, "read_write")}
${maskB(8)}
${kv.decls}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${rowBlock(lq, dm, grid, "i", wg)}
  let qo = ${rowOffset(q, "bb", "i", "hh")};
  let ro = ${rowC(dm, "bb", "i", "hh", lq)};
  var qv: array<f32, ${d}>;
  var dov: array<f32, ${d}>;
  var acc: array<f32, ${d}>;
  var dl = 0.0;
  for (var e = 0u; e < ${d}u; e++) {
    qv[e] = f32(Q[qo + e * ${sd(q)}u]) * ${f32lit(scale)};
    dov[e] = f32(DO[${dout.bindOffset}u + ro + e]);
    dl = fma(dov[e], f32(O[${out.bindOffset}u + ro + e]), dl);
    acc[e] = 0.0;
  }
  let lrow = (bb * ${h}u + hh) * ${lq}u + i;
  let L = Lse[lrow];
  for (var t0 = 0u; t0 < ${lk}u; t0 += ${tk}u) {${kv.stage}
    for (var r = 0u; r < tn; r++) {
      let j = t0 + r;
      var s = ${maskExpr(mask, dm, "i", "j")};
      var dp = 0.0;
      for (var e = 0u; e < ${d}u; e++) {
        s = fma(qv[e], Ks[r * ${d}u + e], s);
        dp = fma(dov[e], Vs[r * ${d}u + e], dp);
      }
      let ds = exp(s - L) * (dp - dl);
      for (var e = 0u; e < ${d}u; e++) { acc[e] = fma(ds, Ks[r * ${d}u + e], acc[e]); }
    }
  }
  if (!live) { return; }
  for (var e = 0u; e < ${d}u; e++) { DQ[ro + e] = ${dq.dtype}(acc[e] * ${f32lit(scale)}); }
  Delta[lrow] = dl;
}
`;
  return {
    name: "attention.dq",
    code,
    grid,
    bindings: [dout, q, k, v, out, lse, dq, delta, ...(mask ? [mask] : [])],
  };
}

/**
 * Backward pass 2, one invocation per key row: dV_j = sum_i P_ij dO_i and
 * dK_j = scale * sum_i P_ij (dP_ij - delta_i) Q_i.
 */
export function dkdvSpec(x: DkdvTensors, dm: Dims, scale: number, wg: number): KernelSpec {
  const { dout, q, k, v, lse, delta, dk, dv, mask } = x;
  const { h, lq, lk, d } = dm;
  const { hdr, maskB } = passHeader(q, mask);
  const grid = rowGrid(lk, dm, wg);
  const tk = tileRows(d, wg);
  const code = `${hdr}// attention backward dk dv ${JSON.stringify(dm)}
${binding(0, "DO", dout, "read")}
${binding(1, "Q", q, "read")}
${binding(2, "K", k, "read")}
${binding(3, "V", v, "read")}
${binding(4, "Lse", lse, "read")}
${binding(5, "Delta", delta, "read")}
${binding(6, "DK", dk, "read_write")}
${binding(7, "DV", dv, "read_write")}
${maskB(8)}
var<workgroup> Qs: array<f32, ${tk * d}>;
var<workgroup> Ds: array<f32, ${tk * d}>;
var<workgroup> Ls: array<f32, ${tk}>;
var<workgroup> Dls: array<f32, ${tk}>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${rowBlock(lk, dm, grid, "j", wg)}
  let ko = ${rowOffset(k, "bb", "j", "hh")};
  let vo = ${rowOffset(v, "bb", "j", "hh")};
  var kv: array<f32, ${d}>;
  var vv: array<f32, ${d}>;
  var dka: array<f32, ${d}>;
  var dva: array<f32, ${d}>;
  for (var e = 0u; e < ${d}u; e++) {
    kv[e] = f32(K[ko + e * ${sd(k)}u]) * ${f32lit(scale)};
    vv[e] = f32(V[vo + e * ${sd(v)}u]);
    dka[e] = 0.0;
    dva[e] = 0.0;
  }
  let lrow = (bb * ${h}u + hh) * ${lq}u;
  for (var t0 = 0u; t0 < ${lq}u; t0 += ${tk}u) {${
    stageTile(tk, d, lq, wg, [
      ["Qs", (r, e) => `f32(Q[${rowOffset(q, "bb", r, "hh")} + ${e} * ${sd(q)}u])`],
      ["Ds", (r, e) => `f32(DO[${dout.bindOffset}u + ${rowC(dm, "bb", r, "hh", lq)} + ${e}])`],
    ])
  }
    if (li < tn) {
      Ls[li] = Lse[lrow + t0 + li];
      Dls[li] = Delta[lrow + t0 + li];
    }
    workgroupBarrier();
    for (var r = 0u; r < tn; r++) {
      let i = t0 + r;
      var s = ${maskExpr(mask, dm, "i", "j")};
      var dp = 0.0;
      for (var e = 0u; e < ${d}u; e++) {
        s = fma(kv[e], Qs[r * ${d}u + e], s);
        dp = fma(Ds[r * ${d}u + e], vv[e], dp);
      }
      let p = exp(s - Ls[r]);
      let ds = p * (dp - Dls[r]);
      for (var e = 0u; e < ${d}u; e++) {
        dva[e] = fma(p, Ds[r * ${d}u + e], dva[e]);
        dka[e] = fma(ds, Qs[r * ${d}u + e], dka[e]);
      }
    }
  }
  if (!live) { return; }
  let wo = ${rowC(dm, "bb", "j", "hh", lk)};
  for (var e = 0u; e < ${d}u; e++) {
    DK[wo + e] = ${dk.dtype}(dka[e] * ${f32lit(scale)});
    DV[wo + e] = ${dv.dtype}(dva[e]);
  }
}
`;
  return {
    name: "attention.dkdv",
    code,
    grid,
    bindings: [dout, q, k, v, lse, delta, dk, dv, ...(mask ? [mask] : [])],
  };
}
