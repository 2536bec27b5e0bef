// softmax over the last axis, and its backward dx = y * (dy - sum(dy * y)).
import { flatIndex, grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { binding, header, requireContiguous } from "./wgsl.ts";

const WG = 64;

export function softmaxForward(rt: Runtime, x: Tensor): Tensor {
  requireContiguous("softmax", x);
  const c = x.shape.at(-1)!, rows = x.size / c;
  const y = rt.empty(x.shape, x.dtype, "softmax");
  const grid = grid1d(rows, WG);
  const code = `${header(x.dtype)}// softmax rows=${rows} c=${c}
${binding(0, "X", x, "read")}
${binding(1, "Y", y, "read_write")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = ${flatIndex(grid, WG)};
  if (r >= ${rows}u) { return; }
  let b = ${x.offset}u + r * ${c}u;
  var m = -3.402823e38;
  for (var j = 0u; j < ${c}u; j++) { m = max(m, f32(X[b + j])); }
  var s = 0.0;
  for (var j = 0u; j < ${c}u; j++) { s += exp(f32(X[b + j]) - m); }
  let inv = 1.0 / s;
  for (var j = 0u; j < ${c}u; j++) { Y[r * ${c}u + j] = ${y.dtype}(exp(f32(X[b + j]) - m) * inv); }
}
`;
  rt.run({ name: "softmax", code, grid, bindings: [x, y] });
  return y;
}

export function softmaxBackward(rt: Runtime, dy: Tensor, y: Tensor): Tensor {
  requireContiguous("softmax backward", dy);
  const c = y.shape.at(-1)!, rows = y.size / c;
  const dx = rt.empty(y.shape, y.dtype, "softmax.dx");
  const grid = grid1d(rows, WG);
  const code = `${header(y.dtype, dy.dtype)}// softmax backward rows=${rows} c=${c}
${binding(0, "DY", dy, "read")}
${binding(1, "Y", y, "read")}
${binding(2, "DX", dx, "read_write")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = ${flatIndex(grid, WG)};
  if (r >= ${rows}u) { return; }
  let b = r * ${c}u;
  var s = 0.0;
  for (var j = 0u; j < ${c}u; j++) {
    s = fma(f32(DY[${dy.offset}u + b + j]), f32(Y[${y.offset}u + b + j]), s);
  }
  for (var j = 0u; j < ${c}u; j++) {
    let yy = f32(Y[${y.offset}u + b + j]);
    DX[b + j] = ${dx.dtype}(yy * (f32(DY[${dy.offset}u + b + j]) - s));
  }
}
`;
  rt.run({ name: "softmax.dx", code, grid, bindings: [dy, y, dx] });
  return dx;
}
