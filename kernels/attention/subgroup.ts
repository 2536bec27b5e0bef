// The attention kernels for 8-lane subgroups (lavapipe: one subgroup = one AVX2 vector). A
// subgroup owns 8 query rows (forward, dQ) or 8 key rows (dK, dV); each lane loads ONE row of
// the other side per block of 8 and subgroupShuffle hands it to the others, so every lane
// issues 8x fewer gathers than a lane-per-row kernel. Head-dim loops are unrolled over vec4
// chunks. Same maths and outputs as the portable kernels (./rows.ts); ./mod.ts picks them
// where `subgroupsServe` says they can run.
import { grid1d } from "../../runtime/kernel.ts";
import type { KernelSpec } from "../../runtime/kernel.ts";
import type { Runtime } from "../../runtime/runtime.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import { binding, f32lit } from "../wgsl.ts";
import { attentionHeader, type Dims, maskExpr } from "./shared.ts";

const SG = 8;
const WG = 64; // 8 subgroups

/** Whether the subgroup kernels can run attention over `ts` (q, k, v, and for the backward
 * dout and out) of head dim d: 8-lane subgroups (lavapipe), enabled, and vec4 layouts. */
export function subgroupsServe(rt: Runtime, ts: Tensor[], d: number): boolean {
  return rt.useSubgroups && rt.gpu.subgroups && rt.gpu.subgroupSize === 8 &&
    subgroupAttentionFits(ts, d);
}

/** vec4 loads need d % 4 == 0, unit stride in d, and 4-aligned offsets and strides. */
function subgroupAttentionFits(ts: Tensor[], d: number): boolean {
  return d % 4 === 0 && d <= 256 &&
    ts.every((t) =>
      t.strides[3] === 1 && t.bindOffset % 4 === 0 &&
      t.strides.slice(0, 3).every((s) => s % 4 === 0)
    );
}

/** Vec4-indexed row offset (in vec4 units) of (bb, row, hh) for a (B, L, H, D) view. */
function row4(t: Tensor, bb: string, row: string, hh: string): string {
  const [sb, sl, sh] = t.strides;
  return `((${t.bindOffset}u + ${bb} * ${sb}u + ${row} * ${sl}u + ${hh} * ${sh}u) / 4u)`;
}

/** Common prologue: which (b, h) and which 8 rows this subgroup owns. */
function prologue(rows: number, dm: Dims, grid: [number, number, number]): string {
  const blocks = Math.ceil(rows / SG);
  return `
  let sgi = (wid.x + wid.y * ${grid[0]}u) * ${WG / SG}u + li / ${SG}u; // subgroup index
  let total = ${dm.b * dm.h * blocks}u;
  let live = sgi < total;
  let blk = min(sgi, total - 1u);
  let r0 = (blk % ${blocks}u) * ${SG}u;
  let hh = (blk / ${blocks}u) % ${dm.h}u;
  let bb = blk / ${blocks * dm.h}u;
  let r = r0 + lane; // this lane's row
  let rc = min(r, ${rows - 1}u);`;
}

function entry(extra = ""): string {
  return `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) lane: u32) {${extra}`;
}

function gridFor(rows: number, dm: Dims): [number, number, number] {
  const subgroups = dm.b * dm.h * Math.ceil(rows / SG);
  return grid1d(subgroups * SG, WG);
}

const range = (n: number) => [...Array(n).keys()];

export function forwardKernel(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dm: Dims,
  scale: number,
  mask?: Tensor,
): KernelSpec {
  const D4 = dm.d / 4;
  const grid = gridFor(dm.lq, dm);
  const L: string[] = [];
  for (const c of range(D4)) {
    L.push(`  let q${c} = vec4<f32>(Q[${row4(q, "bb", "rc", "hh")} + ${c}u]) * ${f32lit(scale)};`);
    L.push(`  var acc${c} = vec4<f32>(0.0);`);
  }
  L.push(`  var m = -3.402823e38;`, `  var l = 0.0;`);
  L.push(`  for (var j0 = 0u; j0 < ${dm.lk}u; j0 += ${SG}u) {`);
  L.push(`    let jr = min(j0 + lane, ${dm.lk - 1}u);`);
  L.push(`    let kb = ${row4(k, "bb", "jr", "hh")};`);
  for (const jj of range(SG)) L.push(`    var s${jj} = 0.0;`);
  for (const c of range(D4)) {
    L.push(`    { let kc = vec4<f32>(K[kb + ${c}u]);`);
    for (const jj of range(SG)) L.push(`      s${jj} += dot(q${c}, subgroupShuffle(kc, ${jj}u));`);
    L.push(`    }`);
  }
  for (const jj of range(SG)) {
    L.push(
      `    s${jj} = select(-3.402823e38, s${jj} + ${
        maskExpr(mask, dm, "rc", `min(j0 + ${jj}u, ${dm.lk - 1}u)`)
      }, j0 + ${jj}u < ${dm.lk}u);`,
    );
  }
  L.push(`    let mb = max(max(max(s0, s1), max(s2, s3)), max(max(s4, s5), max(s6, s7)));`);
  L.push(`    let mn = max(m, mb);`, `    let corr = exp(m - mn);`);
  for (const jj of range(SG)) L.push(`    let p${jj} = exp(s${jj} - mn);`);
  L.push(`    l = l * corr + ${range(SG).map((jj) => `p${jj}`).join(" + ")};`);
  L.push(`    m = mn;`);
  L.push(`    let vb = ${row4(v, "bb", "jr", "hh")};`);
  for (const c of range(D4)) {
    L.push(`    { let vc = vec4<f32>(V[vb + ${c}u]);`);
    L.push(`      var a = acc${c} * corr;`);
    for (const jj of range(SG)) {
      L.push(`      a = fma(vec4<f32>(p${jj}), subgroupShuffle(vc, ${jj}u), a);`);
    }
    L.push(`      acc${c} = a;`, `    }`);
  }
  L.push(`  }`);
  L.push(`  if (live && r < ${dm.lq}u) {`);
  L.push(`    let inv = 1.0 / l;`);
  L.push(`    let ob = ((bb * ${dm.lq}u + r) * ${dm.h}u + hh) * ${D4}u;`);
  for (const c of range(D4)) L.push(`    O[ob + ${c}u] = vec4<${out.dtype}>(acc${c} * inv);`);
  L.push(`    Lse[(bb * ${dm.h}u + hh) * ${dm.lq}u + r] = m + log(l);`, `  }`);
  const binds = [q, k, v, out, lse, ...(mask ? [mask] : [])];
  const code = `${attentionHeader(q, mask)}// attention forward (subgroup) ${JSON.stringify(dm)}
${binding(0, "Q", q, "read", true)}
${binding(1, "K", k, "read", true)}
${binding(2, "V", v, "read", true)}
${binding(3, "O", out, "read_write", true)}
${binding(4, "Lse", lse, "read_write")}
${mask ? binding(5, "Mask", mask, "read") : ""}
${entry()}${prologue(dm.lq, dm, grid)}
${L.join("\n")}
}
`;
  return { name: "attention", code, grid, bindings: binds };
}

/** dQ and delta, per query row: dQ_i = scale * sum_j P_ij (dP_ij - delta_i) K_j. */
export function dqKernel(
  dout: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dq: Tensor,
  delta: Tensor,
  dm: Dims,
  scale: number,
  mask?: Tensor,
): KernelSpec {
  const D4 = dm.d / 4;
  const grid = gridFor(dm.lq, dm);
  const L: string[] = [];
  L.push(`  let rb = ((bb * ${dm.lq}u + rc) * ${dm.h}u + hh) * ${D4}u; // dO / O row (vec4)`);
  L.push(`  var dl = 0.0;`);
  for (const c of range(D4)) {
    L.push(`  let q${c} = vec4<f32>(Q[${row4(q, "bb", "rc", "hh")} + ${c}u]) * ${f32lit(scale)};`);
    L.push(`  let do${c} = vec4<f32>(DO[${dout.bindOffset / 4}u + rb + ${c}u]);`);
    L.push(`  dl += dot(do${c}, vec4<f32>(O[${out.bindOffset / 4}u + rb + ${c}u]));`);
    L.push(`  var acc${c} = vec4<f32>(0.0);`);
  }
  L.push(`  let lrow = (bb * ${dm.h}u + hh) * ${dm.lq}u + rc;`, `  let L = Lse[lrow];`);
  L.push(`  for (var j0 = 0u; j0 < ${dm.lk}u; j0 += ${SG}u) {`);
  L.push(`    let jr = min(j0 + lane, ${dm.lk - 1}u);`);
  L.push(
    `    let kb = ${row4(k, "bb", "jr", "hh")};`,
    `    let vb = ${row4(v, "bb", "jr", "hh")};`,
  );
  for (const jj of range(SG)) L.push(`    var s${jj} = 0.0;`, `    var dp${jj} = 0.0;`);
  for (const c of range(D4)) {
    L.push(`    { let kc = vec4<f32>(K[kb + ${c}u]); let vc = vec4<f32>(V[vb + ${c}u]);`);
    for (const jj of range(SG)) {
      L.push(`      s${jj} += dot(q${c}, subgroupShuffle(kc, ${jj}u));`);
      L.push(`      dp${jj} += dot(do${c}, subgroupShuffle(vc, ${jj}u));`);
    }
    L.push(`    }`);
  }
  for (const jj of range(SG)) {
    L.push(
      `    let ds${jj} = select(0.0, exp(s${jj} + ${
        maskExpr(mask, dm, "rc", `min(j0 + ${jj}u, ${dm.lk - 1}u)`)
      } - L) * (dp${jj} - dl), j0 + ${jj}u < ${dm.lk}u);`,
    );
  }
  for (const c of range(D4)) {
    L.push(`    { let kc = vec4<f32>(K[kb + ${c}u]);`);
    for (const jj of range(SG)) {
      L.push(`      acc${c} = fma(vec4<f32>(ds${jj}), subgroupShuffle(kc, ${jj}u), acc${c});`);
    }
    L.push(`    }`);
  }
  L.push(`  }`);
  L.push(`  if (live && r < ${dm.lq}u) {`);
  L.push(`    let ob = ((bb * ${dm.lq}u + r) * ${dm.h}u + hh) * ${D4}u;`);
  for (const c of range(D4)) {
    L.push(`    DQ[ob + ${c}u] = vec4<${dq.dtype}>(acc${c} * ${f32lit(scale)});`);
  }
  L.push(`    Delta[lrow] = dl;`, `  }`);
  const code = `${attentionHeader(q, mask)}// attention dq (subgroup) ${JSON.stringify(dm)}
${binding(0, "DO", dout, "read", true)}
${binding(1, "Q", q, "read", true)}
${binding(2, "K", k, "read", true)}
${binding(3, "V", v, "read", true)}
${binding(4, "O", out, "read", true)}
${binding(5, "Lse", lse, "read")}
${binding(6, "DQ", dq, "read_write", true)}
${binding(7, "Delta", delta, "read_write")}
${mask ? binding(8, "Mask", mask, "read") : ""}
${entry()}${prologue(dm.lq, dm, grid)}
${L.join("\n")}
}
`;
  return {
    name: "attention.dq",
    code,
    grid,
    bindings: [dout, q, k, v, out, lse, dq, delta, ...(mask ? [mask] : [])],
  };
}

/** dK, dV per key row: dV_j = sum_i P_ij dO_i; dK_j = scale * sum_i P_ij (dP_ij - delta_i) Q_i. */
export function dkdvKernel(
  dout: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lse: Tensor,
  delta: Tensor,
  dk: Tensor,
  dv: Tensor,
  dm: Dims,
  scale: number,
  mask?: Tensor,
): KernelSpec {
  const D4 = dm.d / 4;
  const grid = gridFor(dm.lk, dm);
  const L: string[] = [];
  for (const c of range(D4)) {
    L.push(`  let k${c} = vec4<f32>(K[${row4(k, "bb", "rc", "hh")} + ${c}u]) * ${f32lit(scale)};`);
    L.push(`  let v${c} = vec4<f32>(V[${row4(v, "bb", "rc", "hh")} + ${c}u]);`);
    L.push(`  var dk${c} = vec4<f32>(0.0);`, `  var dv${c} = vec4<f32>(0.0);`);
  }
  L.push(`  for (var i0 = 0u; i0 < ${dm.lq}u; i0 += ${SG}u) {`);
  L.push(`    let ir = min(i0 + lane, ${dm.lq - 1}u);`);
  L.push(`    let qb = ${row4(q, "bb", "ir", "hh")};`);
  L.push(
    `    let ob = ${dout.bindOffset / 4}u + ((bb * ${dm.lq}u + ir) * ${dm.h}u + hh) * ${D4}u;`,
  );
  L.push(`    let lrow = (bb * ${dm.h}u + hh) * ${dm.lq}u + ir;`);
  L.push(`    let myL = Lse[lrow];`, `    let myDelta = Delta[lrow];`);
  for (const ii of range(SG)) L.push(`    var s${ii} = 0.0;`, `    var dp${ii} = 0.0;`);
  for (const c of range(D4)) {
    L.push(`    { let qc = vec4<f32>(Q[qb + ${c}u]); let oc = vec4<f32>(DO[ob + ${c}u]);`);
    for (const ii of range(SG)) {
      L.push(`      s${ii} += dot(k${c}, subgroupShuffle(qc, ${ii}u));`);
      L.push(`      dp${ii} += dot(v${c}, subgroupShuffle(oc, ${ii}u));`);
    }
    L.push(`    }`);
  }
  for (const ii of range(SG)) {
    L.push(`    let Li${ii} = subgroupShuffle(myL, ${ii}u);`);
    L.push(`    let De${ii} = subgroupShuffle(myDelta, ${ii}u);`);
    L.push(
      `    let p${ii} = select(0.0, exp(s${ii} + ${
        maskExpr(mask, dm, `min(i0 + ${ii}u, ${dm.lq - 1}u)`, "rc")
      } - Li${ii}), i0 + ${ii}u < ${dm.lq}u);`,
    );
    L.push(`    let ds${ii} = p${ii} * (dp${ii} - De${ii});`);
  }
  for (const c of range(D4)) {
    L.push(`    { let qc = vec4<f32>(Q[qb + ${c}u]); let oc = vec4<f32>(DO[ob + ${c}u]);`);
    for (const ii of range(SG)) {
      L.push(`      dv${c} = fma(vec4<f32>(p${ii}), subgroupShuffle(oc, ${ii}u), dv${c});`);
      L.push(`      dk${c} = fma(vec4<f32>(ds${ii}), subgroupShuffle(qc, ${ii}u), dk${c});`);
    }
    L.push(`    }`);
  }
  L.push(`  }`);
  L.push(`  if (live && r < ${dm.lk}u) {`);
  L.push(`    let wb = ((bb * ${dm.lk}u + r) * ${dm.h}u + hh) * ${D4}u;`);
  for (const c of range(D4)) {
    L.push(`    DK[wb + ${c}u] = vec4<${dk.dtype}>(dk${c} * ${f32lit(scale)});`);
    L.push(`    DV[wb + ${c}u] = vec4<${dv.dtype}>(dv${c});`);
  }
  L.push(`  }`);
  const code = `${attentionHeader(q, mask)}// attention dk dv (subgroup) ${JSON.stringify(dm)}
${binding(0, "DO", dout, "read", true)}
${binding(1, "Q", q, "read", true)}
${binding(2, "K", k, "read", true)}
${binding(3, "V", v, "read", true)}
${binding(4, "Lse", lse, "read")}
${binding(5, "Delta", delta, "read")}
${binding(6, "DK", dk, "read_write", true)}
${binding(7, "DV", dv, "read_write", true)}
${mask ? binding(8, "Mask", mask, "read") : ""}
${entry()}${prologue(dm.lk, dm, grid)}
${L.join("\n")}
}
`;
  return {
    name: "attention.dkdv",
    code,
    grid,
    bindings: [dout, q, k, v, lse, delta, dk, dv, ...(mask ? [mask] : [])],
  };
}
