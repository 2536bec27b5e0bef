// Fused multi-head scaled dot-product attention with online softmax:
//   O = softmax(Q K^T * scale + mask) V, per batch and head,
// never materialising the (Lq x Lk) score matrix. Q, K, V are (B, L, H, D) views with any
// strides (so they can be slices of one packed qkv projection); O is contiguous (B, Lq, H, D).
// The forward saves the log-sum-exp per row; the backward (FlashAttention-2's) recomputes
// probabilities from it: one pass per query row for dQ, one per key row for dK and dV.
// Portable kernels (any adapter): one invocation owns one row; its workgroup of 64 rows of one
// (batch, head) walks the other side's rows in tiles staged in workgroup memory, so each K/V
// (or Q/dO) row is read from global memory once per 64 rows instead of once per row.
import { grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { onScratch } from "../runtime/autotune.ts";
import { binding, f32lit, header, requireDtype, ShapeError } from "./wgsl.ts";
import {
  dkdvKernel,
  dqKernel,
  forwardKernel,
  maskExpr,
  subgroupAttentionFits,
} from "./attention_subgroup.ts";

/** The subgroup kernels need 8-lane subgroups (lavapipe) and vec4-friendly layouts. */
function useSubgroups(rt: Runtime, ts: Tensor[], d: number): boolean {
  return rt.useSubgroups && rt.gpu.subgroups && rt.gpu.subgroupSize === 8 &&
    subgroupAttentionFits(ts, d);
}

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

export interface Dims {
  b: number;
  h: number;
  lq: number;
  lk: number;
  d: number;
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

/** WGSL: element offset of row `row` (in 0..L) of batch bb, head hh for a (B, L, H, D) view. */
function rowOffset(t: Tensor, bb: string, row: string, hh: string): string {
  const [sb, sl, sh] = t.strides;
  return `(${t.bindOffset}u + ${bb} * ${sb}u + ${row} * ${sl}u + ${hh} * ${sh}u)`;
}

export function attentionForward(
  rt: Runtime,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: AttentionKernelOptions = {},
): { out: Tensor; lse: Tensor } {
  const dm = dims(q, k, v, o.mask);
  const { b, h, lq, d } = dm;
  const scale = o.scale ?? 1 / Math.sqrt(d);
  const out = rt.empty([b, lq, h, d], q.dtype, "attention.out");
  const lse = rt.empty([b, h, lq], "f32", "attention.lse");
  if (useSubgroups(rt, [q, k, v], d)) {
    rt.run(forwardKernel(q, k, v, out, lse, dm, scale, o.mask));
    return { out, lse };
  }
  const x = { q, k, v, out, lse, mask: o.mask };
  runPass(rt, "forward", lq, dm, o.rows, x, (x, wg) => forwardSpec(x, dm, scale, wg));
  return { out, lse };
}

export interface AttentionKernelOptions {
  /** Default 1 / sqrt(D). */
  scale?: number;
  /** Additive, (Lq, Lk) or (B, Lq, Lk). */
  mask?: Tensor;
  /** Rows per workgroup of the portable kernels (default: by adapter, then autotuned). */
  rows?: number;
}

interface ForwardTensors {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  out: Tensor;
  lse: Tensor;
  mask?: Tensor;
}

/** The portable forward: one invocation per query row, `wg` rows of a (batch, head) per
 * workgroup, K and V tiles staged in workgroup memory, online softmax. */
function forwardSpec(x: ForwardTensors, dm: Dims, scale: number, wg: number): KernelSpec {
  const { q, k, v, out, lse, mask } = x;
  const { h, lq, lk, d } = dm;
  const grid = rowGrid(lq, dm, wg);
  const tk = tileRows(d, wg);
  const kv = kvTiles(k, v, d, lk, wg);
  const binds = [q, k, v, out, lse];
  const maskDecl = mask ? binding(5, "Mask", mask, "read") : "";
  if (mask) binds.push(mask);
  const code = `${header(q.dtype, ...(mask ? [mask.dtype] : []))}// attention forward ${
    JSON.stringify(dm)
  }
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

/** Gradients of attention: dq, dk, dv contiguous (B, L, H, D). */
export function attentionBackward(
  rt: Runtime,
  dout: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  o: AttentionKernelOptions = {},
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
  if (useSubgroups(rt, [q, k, v, dout, out], d)) {
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

/** WGSL: element offset of row `row` of a contiguous (B, L, H, D) tensor (dO, O). */
function rowC(dm: Dims, bb: string, row: string, hh: string, l: number): string {
  return `(((${bb} * ${l}u + ${row}) * ${dm.h}u + ${hh}) * ${dm.d}u)`;
}

/** The WGSL header of a backward pass and its optional mask binding. */
function passHeader(q: Tensor, mask?: Tensor): { hdr: string; maskB: (i: number) => string } {
  return {
    hdr: header(q.dtype, ...(mask ? [mask.dtype] : [])),
    maskB: (i) => (mask ? binding(i, "Mask", mask, "read") : ""),
  };
}

/** WGSL: stride of a (B, L, H, D) view along D. */
const sd = (t: Tensor) => t.strides[3];

/**
 * Backward pass 1, one invocation per query row: delta_i = dO_i . O_i and
 * dQ_i = scale * sum_j P_ij (dP_ij - delta_i) K_j.
 */
function dqSpec(
  x: {
    dout: Tensor;
    q: Tensor;
    k: Tensor;
    v: Tensor;
    out: Tensor;
    lse: Tensor;
    dq: Tensor;
    delta: Tensor;
    mask?: Tensor;
  },
  dm: Dims,
  scale: number,
  wg: number,
): KernelSpec {
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
function dkdvSpec(
  x: {
    dout: Tensor;
    q: Tensor;
    k: Tensor;
    v: Tensor;
    lse: Tensor;
    delta: Tensor;
    dk: Tensor;
    dv: Tensor;
    mask?: Tensor;
  },
  dm: Dims,
  scale: number,
  wg: number,
): KernelSpec {
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

/** Rows per workgroup tried for the portable kernels. */
const PASS_ROWS = [64, 32, 16];

/**
 * Rows per workgroup of a portable pass over `rows` rows: 64 on software adapters (what was
 * measured there); on GPUs fewer, so that short sequences (L = 64: one block per head)
 * still give batch x heads x blocks >= 512 workgroups. The autotuner refines it.
 */
function passRows(rt: Runtime, rows: number, dm: Dims): number {
  if (rt.gpu.software) return 64;
  return PASS_ROWS.find((wg) => dm.b * dm.h * Math.ceil(rows / wg) >= 512) ?? 16;
}

/** Runs one portable pass with the forced, heuristic or autotuned rows per workgroup. */
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

/** Plain TypeScript reference (tests only): q, k, v (B, L, H, D) contiguous. */
export function attentionReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dm: Dims,
  scale = 1 / Math.sqrt(dm.d),
  mask?: ArrayLike<number>,
): Float64Array {
  const { b, h, lq, lk, d } = dm;
  const out = new Float64Array(b * lq * h * d);
  for (let bb = 0; bb < b; bb++) {
    for (let hh = 0; hh < h; hh++) {
      for (let i = 0; i < lq; i++) {
        const s = new Float64Array(lk);
        let m = -Infinity;
        for (let j = 0; j < lk; j++) {
          let acc = mask ? mask[(mask.length === lq * lk ? 0 : bb * lq * lk) + i * lk + j] : 0;
          for (let e = 0; e < d; e++) {
            acc += q[((bb * lq + i) * h + hh) * d + e] * k[((bb * lk + j) * h + hh) * d + e] *
              scale;
          }
          s[j] = acc;
          m = Math.max(m, acc);
        }
        let z = 0;
        for (let j = 0; j < lk; j++) z += s[j] = Math.exp(s[j] - m);
        for (let e = 0; e < d; e++) {
          let acc = 0;
          for (let j = 0; j < lk; j++) acc += s[j] * v[((bb * lk + j) * h + hh) * d + e];
          out[((bb * lq + i) * h + hh) * d + e] = acc / z;
        }
      }
    }
  }
  return out;
}
