// layer norm over the last axis: y = (x - mean) * rstd * gamma + beta.
// Forward saves mean and rstd per row; backward gives dx per row and dgamma/dbeta by
// column sums (chunked, then reduced).
import { flatIndex, grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { binding, f32lit, header, requireContiguous, rolled, ShapeError } from "./wgsl.ts";
import { reduce } from "./reduce.ts";

const WG = 64;

/** Rows as vec4 (4x fewer loads, which is what costs on llvmpipe) when widths and offsets
 * allow; the WGSL value type, element count per row, a horizontal sum and an offset helper. */
function rowVec(c: number, ts: Tensor[]) {
  const v = c % 4 === 0 && ts.every((t) => t.bindOffset % 4 === 0);
  return {
    v,
    w: v ? c / 4 : c,
    V: v ? "vec4<f32>" : "f32",
    T: (t: Tensor) => (v ? `vec4<${t.dtype}>` : t.dtype),
    hsum: (e: string) => (v ? `dot(${e}, vec4<f32>(1.0))` : e),
    off: (t: Tensor) => (v ? t.bindOffset / 4 : t.bindOffset),
  };
}

function check(x: Tensor, gamma: Tensor, beta: Tensor): { rows: number; c: number } {
  requireContiguous("layerNorm", x);
  const c = x.shape.at(-1)!;
  if (gamma.size !== c || beta.size !== c) {
    throw new ShapeError("layerNorm", `gamma and beta need ${c} elements`, x, gamma, beta);
  }
  return { rows: x.size / c, c };
}

/** (..., C) -> y (..., C), mean (rows), rstd (rows). */
export function layerNormForward(
  rt: Runtime,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
): { y: Tensor; mean: Tensor; rstd: Tensor } {
  const { rows, c } = check(x, gamma, beta);
  const y = rt.empty(x.shape, x.dtype, "layerNorm.y");
  const mean = rt.empty([rows], "f32", "layerNorm.mean");
  const rstd = rt.empty([rows], "f32", "layerNorm.rstd");
  const grid = grid1d(rows, WG);
  const { v, w, V, T, hsum, off } = rowVec(c, [x, gamma, beta, y]);
  const code = `${header(x.dtype)}// layerNorm forward rows=${rows} c=${c}
${binding(0, "X", x, "read", v)}
${binding(1, "G", gamma, "read", v)}
${binding(2, "B", beta, "read", v)}
${binding(3, "Y", y, "read_write", v)}
${binding(4, "Mean", mean, "read_write")}
${binding(5, "Rstd", rstd, "read_write")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = ${flatIndex(grid, WG)};
  if (r >= ${rows}u) { return; }
  let base = ${off(x)}u + r * ${w}u;
  let n = ${rolled(w, "Mean")};
  var s = ${V}(0.0);
  for (var j = 0u; j < n; j++) { s += ${V}(X[base + j]); }
  let mu = ${hsum("s")} / ${c}.0;
  var q = ${V}(0.0);
  for (var j = 0u; j < n; j++) { let d = ${V}(X[base + j]) - mu; q = fma(d, d, q); }
  let rs = inverseSqrt(${hsum("q")} / ${c}.0 + ${f32lit(eps)});
  for (var j = 0u; j < n; j++) {
    let xh = (${V}(X[base + j]) - mu) * rs;
    Y[r * ${w}u + j] = ${T(y)}(xh * ${V}(G[${off(gamma)}u + j]) + ${V}(B[${off(beta)}u + j]));
  }
  Mean[r] = mu;
  Rstd[r] = rs;
}
`;
  rt.run({ name: "layerNorm", code, grid, bindings: [x, gamma, beta, y, mean, rstd] });
  return { y, mean, rstd };
}

/** dx = rstd * (g*dy - mean(g*dy) - xhat * mean(g*dy*xhat)); dgamma, dbeta column sums. */
export function layerNormBackward(
  rt: Runtime,
  dy: Tensor,
  x: Tensor,
  gamma: Tensor,
  mean: Tensor,
  rstd: Tensor,
): { dx: Tensor; dgamma: Tensor; dbeta: Tensor } {
  const { rows, c } = check(x, gamma, gamma);
  requireContiguous("layerNorm backward", dy);
  const dx = rt.empty(x.shape, x.dtype, "layerNorm.dx");
  const grid = grid1d(rows, WG);
  const { v, w, V, T, hsum, off } = rowVec(c, [dy, x, gamma, dx]);
  const code = `${header(x.dtype, dy.dtype)}// layerNorm backward dx rows=${rows} c=${c}
${binding(0, "DY", dy, "read", v)}
${binding(1, "X", x, "read", v)}
${binding(2, "G", gamma, "read", v)}
${binding(3, "Mean", mean, "read")}
${binding(4, "Rstd", rstd, "read")}
${binding(5, "DX", dx, "read_write", v)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = ${flatIndex(grid, WG)};
  if (r >= ${rows}u) { return; }
  let xb = ${off(x)}u + r * ${w}u;
  let db = ${off(dy)}u + r * ${w}u;
  let mu = Mean[r];
  let rs = Rstd[r];
  let n = ${rolled(w, "Mean")};
  var sa = ${V}(0.0);
  var sb = ${V}(0.0);
  for (var j = 0u; j < n; j++) {
    let gdy = ${V}(G[${off(gamma)}u + j]) * ${V}(DY[db + j]);
    sa += gdy;
    sb = fma(gdy, (${V}(X[xb + j]) - mu) * rs, sb);
  }
  let a = ${hsum("sa")} / ${c}.0;
  let b = ${hsum("sb")} / ${c}.0;
  for (var j = 0u; j < n; j++) {
    let gdy = ${V}(G[${off(gamma)}u + j]) * ${V}(DY[db + j]);
    let xh = (${V}(X[xb + j]) - mu) * rs;
    DX[r * ${w}u + j] = ${T(dx)}(rs * (gdy - a - xh * b));
  }
}
`;
  rt.run({ name: "layerNorm.dx", code, grid, bindings: [dy, x, gamma, mean, rstd, dx] });

  // Column partial sums over row chunks: P[chunk, 0, j] = sum dy*xhat, P[chunk, 1, j] = sum dy.
  // (GPUs: up to 1024 chunks of 32 rows, so many workgroups share the work; else 64 of 256.)
  const chunks = rt.spread
    ? Math.max(1, Math.min(1024, Math.ceil(rows / 32)))
    : Math.max(1, Math.min(64, Math.ceil(rows / 256)));
  const per = Math.ceil(rows / chunks);
  const partial = rt.empty([chunks, 2, c], "f32", "layerNorm.partial");
  // One invocation per (chunk, column), or per (chunk, 4 columns) as vec4.
  const p = rowVec(c, [dy, x, partial]);
  const g2 = grid1d(chunks * p.w, WG);
  const code2 = `${header(x.dtype, dy.dtype)}// layerNorm backward dgamma/dbeta rows=${rows} c=${c}
${binding(0, "DY", dy, "read", p.v)}
${binding(1, "X", x, "read", p.v)}
${binding(2, "Mean", mean, "read")}
${binding(3, "Rstd", rstd, "read")}
${binding(4, "P", partial, "read_write", p.v)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${flatIndex(g2, WG)};
  if (i >= ${chunks * p.w}u) { return; }
  let chunk = i / ${p.w}u;
  let j = i % ${p.w}u;
  var sg = ${p.V}(0.0);
  var sb = ${p.V}(0.0);
  let r1 = min((chunk + 1u) * ${per}u, ${rows}u);
  for (var r = chunk * ${per}u; r < r1; r++) {
    let d = ${p.V}(DY[${p.off(dy)}u + r * ${p.w}u + j]);
    sg = fma(d, (${p.V}(X[${p.off(x)}u + r * ${p.w}u + j]) - Mean[r]) * Rstd[r], sg);
    sb += d;
  }
  P[chunk * ${2 * p.w}u + j] = sg;
  P[chunk * ${2 * p.w}u + ${p.w}u + j] = sb;
}
`;
  rt.run({
    name: "layerNorm.dparams",
    code: code2,
    grid: g2,
    bindings: [dy, x, mean, rstd, partial],
  });
  const sums = reduce(rt, partial, [0], "sum"); // (2, c)
  return { dx, dgamma: sums.slice0(0, 1).view([c]), dbeta: sums.slice0(1, 2).view([c]) };
}
