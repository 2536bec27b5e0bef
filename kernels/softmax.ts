// softmax over the last axis, y = softmax(scale * x), and its backward
// dx = scale * y * (dy - sum(dy * y)). One invocation per row; rows whose width and offsets
// are multiples of 4 are read and written as vec4 (4x fewer loads: on llvmpipe each storage
// access is per-lane scalar code, so loads are what costs).
import { flatIndex, grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { binding, f32lit, header, requireContiguous, rolled } from "./wgsl.ts";

const WG = 64;

/** vec4 access fits when the row width and every offset are multiples of 4. */
function vec4Rows(c: number, ts: Tensor[]): boolean {
  return c % 4 === 0 && ts.every((t) => t.bindOffset % 4 === 0);
}

export function softmaxForward(rt: Runtime, x: Tensor, scale = 1): Tensor {
  requireContiguous("softmax", x);
  if (!(scale > 0)) throw new Error(`softmax: scale must be positive, got ${scale}`);
  const c = x.shape.at(-1)!, rows = x.size / c;
  const y = rt.empty(x.shape, x.dtype, "softmax");
  const grid = grid1d(rows, WG);
  const v = vec4Rows(c, [x, y]);
  const w = v ? c / 4 : c; // elements (vec4s or scalars) per row
  const V = v ? "vec4<f32>" : "f32", T = v ? `vec4<${y.dtype}>` : y.dtype;
  const hmax = v ? "max(max(t.x, t.y), max(t.z, t.w))" : "t";
  const hsum = v ? "(t.x + t.y + t.z + t.w)" : "t";
  const sc = f32lit(scale);
  const code = `${header(x.dtype)}// softmax rows=${rows} c=${c} scale=${scale}
${binding(0, "X", x, "read", v)}
${binding(1, "Y", y, "read_write", v)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = ${flatIndex(grid, WG)};
  if (r >= ${rows}u) { return; }
  let b = ${v ? x.bindOffset / 4 : x.bindOffset}u + r * ${w}u;
  let o = r * ${w}u;
  let n = ${rolled(w, "Y")};
  var m = -3.402823e38;
  for (var j = 0u; j < n; j++) { let t = ${V}(X[b + j]); m = max(m, ${hmax}); }
  var s = 0.0;
  for (var j = 0u; j < n; j++) {
    let t = exp((${V}(X[b + j]) - m) * ${sc});
    s += ${hsum};
    Y[o + j] = ${T}(t);
  }
  let inv = 1.0 / s;
  for (var j = 0u; j < n; j++) { Y[o + j] = ${T}(${V}(Y[o + j]) * inv); }
}
`;
  rt.run({ name: "softmax", code, grid, bindings: [x, y] });
  return y;
}

export function softmaxBackward(rt: Runtime, dy: Tensor, y: Tensor, scale = 1): Tensor {
  requireContiguous("softmax backward", dy);
  requireContiguous("softmax backward", y);
  const c = y.shape.at(-1)!, rows = y.size / c;
  const dx = rt.empty(y.shape, y.dtype, "softmax.dx");
  const grid = grid1d(rows, WG);
  const v = vec4Rows(c, [dy, y, dx]);
  const w = v ? c / 4 : c;
  const V = v ? "vec4<f32>" : "f32", T = v ? `vec4<${dx.dtype}>` : dx.dtype;
  const off = (t: Tensor) => (v ? t.bindOffset / 4 : t.bindOffset);
  const code = `${header(y.dtype, dy.dtype)}// softmax backward rows=${rows} c=${c} scale=${scale}
${binding(0, "DY", dy, "read", v)}
${binding(1, "Y", y, "read", v)}
${binding(2, "DX", dx, "read_write", v)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = ${flatIndex(grid, WG)};
  if (r >= ${rows}u) { return; }
  let b = r * ${w}u;
  let n = ${rolled(w, "DX")};
  var acc = ${V}(0.0);
  for (var j = 0u; j < n; j++) {
    acc = fma(${V}(DY[${off(dy)}u + b + j]), ${V}(Y[${off(y)}u + b + j]), acc);
  }
  let s = ${v ? "acc.x + acc.y + acc.z + acc.w" : "acc"};
  for (var j = 0u; j < n; j++) {
    let yy = ${V}(Y[${off(y)}u + b + j]);
    DX[b + j] = ${T}(yy * (${V}(DY[${off(dy)}u + b + j]) - s) * ${f32lit(scale)});
  }
}
`;
  rt.run({ name: "softmax.dx", code, grid, bindings: [dy, y, dx] });
  return dx;
}
