// layer norm over the last axis: y = (x - mean) * rstd * gamma + beta.
// Forward saves mean and rstd per row; backward gives dx per row and dgamma/dbeta by
// column sums (chunked, then reduced).
import { flatIndex, grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { binding, f32lit, header, requireContiguous, ShapeError } from "./wgsl.ts";
import { reduce } from "./reduce.ts";

const WG = 64;

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
  const code = `${header(x.dtype)}// layerNorm forward rows=${rows} c=${c}
${binding(0, "X", x, "read")}
${binding(1, "G", gamma, "read")}
${binding(2, "B", beta, "read")}
${binding(3, "Y", y, "read_write")}
${binding(4, "Mean", mean, "read_write")}
${binding(5, "Rstd", rstd, "read_write")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = ${flatIndex(grid, WG)};
  if (r >= ${rows}u) { return; }
  let base = ${x.offset}u + r * ${c}u;
  var s = 0.0;
  for (var j = 0u; j < ${c}u; j++) { s += f32(X[base + j]); }
  let mu = s / ${c}.0;
  var v = 0.0;
  for (var j = 0u; j < ${c}u; j++) { let d = f32(X[base + j]) - mu; v = fma(d, d, v); }
  let rs = inverseSqrt(v / ${c}.0 + ${f32lit(eps)});
  for (var j = 0u; j < ${c}u; j++) {
    let xh = (f32(X[base + j]) - mu) * rs;
    Y[r * ${c}u + j] = ${y.dtype}(xh * f32(G[${gamma.offset}u + j]) + f32(B[${beta.offset}u + j]));
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
  const code = `${header(x.dtype, dy.dtype)}// layerNorm backward dx rows=${rows} c=${c}
${binding(0, "DY", dy, "read")}
${binding(1, "X", x, "read")}
${binding(2, "G", gamma, "read")}
${binding(3, "Mean", mean, "read")}
${binding(4, "Rstd", rstd, "read")}
${binding(5, "DX", dx, "read_write")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = ${flatIndex(grid, WG)};
  if (r >= ${rows}u) { return; }
  let xb = ${x.offset}u + r * ${c}u;
  let db = ${dy.offset}u + r * ${c}u;
  let mu = Mean[r];
  let rs = Rstd[r];
  var a = 0.0;
  var b = 0.0;
  for (var j = 0u; j < ${c}u; j++) {
    let gdy = f32(G[${gamma.offset}u + j]) * f32(DY[db + j]);
    a += gdy;
    b = fma(gdy, (f32(X[xb + j]) - mu) * rs, b);
  }
  a = a / ${c}.0;
  b = b / ${c}.0;
  for (var j = 0u; j < ${c}u; j++) {
    let gdy = f32(G[${gamma.offset}u + j]) * f32(DY[db + j]);
    let xh = (f32(X[xb + j]) - mu) * rs;
    DX[r * ${c}u + j] = ${dx.dtype}(rs * (gdy - a - xh * b));
  }
}
`;
  rt.run({ name: "layerNorm.dx", code, grid, bindings: [dy, x, gamma, mean, rstd, dx] });

  // Column partial sums over row chunks: P[chunk, 0, j] = sum dy*xhat, P[chunk, 1, j] = sum dy.
  const chunks = Math.max(1, Math.min(64, Math.ceil(rows / 256)));
  const per = Math.ceil(rows / chunks);
  const partial = rt.empty([chunks, 2, c], "f32", "layerNorm.partial");
  const g2 = grid1d(chunks * c, WG);
  const code2 = `${header(x.dtype, dy.dtype)}// layerNorm backward dgamma/dbeta rows=${rows} c=${c}
${binding(0, "DY", dy, "read")}
${binding(1, "X", x, "read")}
${binding(2, "Mean", mean, "read")}
${binding(3, "Rstd", rstd, "read")}
${binding(4, "P", partial, "read_write")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${flatIndex(g2, WG)};
  if (i >= ${chunks * c}u) { return; }
  let chunk = i / ${c}u;
  let j = i % ${c}u;
  var sg = 0.0;
  var sb = 0.0;
  let r1 = min((chunk + 1u) * ${per}u, ${rows}u);
  for (var r = chunk * ${per}u; r < r1; r++) {
    let d = f32(DY[${dy.offset}u + r * ${c}u + j]);
    sg = fma(d, (f32(X[${x.offset}u + r * ${c}u + j]) - Mean[r]) * Rstd[r], sg);
    sb += d;
  }
  P[chunk * ${2 * c}u + j] = sg;
  P[chunk * ${2 * c}u + ${c}u + j] = sb;
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
