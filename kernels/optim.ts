// Optimiser updates and global-norm gradient clipping, entirely on the GPU: the clip
// coefficient is computed by a kernel and read by the update kernels, so a step never waits.
//
// hyper (f32[8], written by the trainer before each step): lr, beta1 | momentum, beta2,
// eps, weight decay, 1 - beta1^t, 1 - beta2^t, (unused)
// gradScale (f32[2], written by clipCoefficient): clip coefficient, global grad norm
import { flatIndex, grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { binding, f32lit, ShapeError } from "./wgsl.ts";
import { reduce } from "./reduce.ts";

const WG = 64;

function same(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.size !== ts[0].size || !t.isContiguous || t.dtype !== "f32") {
      throw new ShapeError(
        op,
        "parameter, gradient and state must be contiguous f32 of one size",
        ...ts,
      );
    }
  }
}

/** Sum of squares of `grad` into norms[slot]. */
export function gradSumSquares(rt: Runtime, grad: Tensor, norms: Tensor, slot: number): void {
  reduce(rt, grad.view([grad.size]), [0], "sumsq", { out: norms.slice0(slot, slot + 1) });
}

/** gradScale = [min(1, maxNorm / (||g|| + 1e-6)), ||g||]; maxNorm <= 0 disables clipping. */
export function clipCoefficient(
  rt: Runtime,
  norms: Tensor,
  gradScale: Tensor,
  maxNorm: number,
): void {
  const n = norms.size;
  const code = `// clip coefficient over ${n} tensors, max norm ${maxNorm}
${binding(0, "Norms", norms, "read")}
${binding(1, "S", gradScale, "read_write")}
@compute @workgroup_size(1)
fn main() {
  var t = 0.0;
  for (var i = 0u; i < ${n}u; i++) { t += Norms[${norms.offset}u + i]; }
  let norm = sqrt(t);
  S[0] = ${maxNorm > 0 ? `min(1.0, ${f32lit(maxNorm)} / (norm + 1e-6))` : "1.0"};
  S[1] = norm;
}
`;
  rt.run({ name: "clip", code, grid: [1, 1, 1], bindings: [norms, gradScale] });
}

/** AdamW (decoupled weight decay), as torch.optim.AdamW. */
export function adamwStep(
  rt: Runtime,
  p: Tensor,
  g: Tensor,
  m: Tensor,
  v: Tensor,
  hyper: Tensor,
  gradScale: Tensor,
  decay: boolean,
): void {
  same("adamw", p, g, m, v);
  // Four elements per invocation as vec4 where sizes and offsets allow (4x fewer loads).
  const V = [p, g, m, v].every((t) => t.offset % 4 === 0) && p.size % 4 === 0;
  const W = V ? 4 : 1, T = V ? "vec4<f32>" : "f32";
  const n = p.size / W;
  const grid = grid1d(n, WG);
  const off = (t: Tensor) => t.offset / W;
  const code = `// adamw n=${p.size} decay=${decay} vec=${V}
${binding(0, "P", p, "read_write", V)}
${binding(1, "G", g, "read", V)}
${binding(2, "M", m, "read_write", V)}
${binding(3, "V", v, "read_write", V)}
${binding(4, "H", hyper, "read")}
${binding(5, "S", gradScale, "read")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${flatIndex(grid, WG)};
  if (i >= ${n}u) { return; }
  let lr = H[0]; let b1 = H[1]; let b2 = H[2]; let eps = H[3]; let wd = H[4];
  let g = G[${off(g)}u + i] * S[0];
  let pi = ${off(p)}u + i;
  let mi = ${off(m)}u + i;
  let vi = ${off(v)}u + i;
  let mm = b1 * M[mi] + (1.0 - b1) * g;
  let vv = b2 * V[vi] + (1.0 - b2) * g * g;
  M[mi] = mm;
  V[vi] = vv;
  var w: ${T} = P[pi];
  ${decay ? "w = w * (1.0 - lr * wd);" : ""}
  P[pi] = w - lr * (mm / H[5]) / (sqrt(vv / H[6]) + eps);
}
`;
  rt.run({ name: "adamw", code, grid, bindings: [p, g, m, v, hyper, gradScale] });
}

/** SGD with momentum (optionally Nesterov) and L2 weight decay, as torch.optim.SGD. */
export function sgdStep(
  rt: Runtime,
  p: Tensor,
  g: Tensor,
  buf: Tensor,
  hyper: Tensor,
  gradScale: Tensor,
  decay: boolean,
  nesterov: boolean,
): void {
  same("sgd", p, g, buf);
  const n = p.size;
  const grid = grid1d(n, WG);
  const code = `// sgd n=${n} decay=${decay} nesterov=${nesterov}
${binding(0, "P", p, "read_write")}
${binding(1, "G", g, "read")}
${binding(2, "B", buf, "read_write")}
${binding(3, "H", hyper, "read")}
${binding(4, "S", gradScale, "read")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${flatIndex(grid, WG)};
  if (i >= ${n}u) { return; }
  let lr = H[0]; let mu = H[1]; let wd = H[4];
  let pi = ${p.offset}u + i;
  let bi = ${buf.offset}u + i;
  var g = G[${g.offset}u + i] * S[0];
  ${decay ? "g = g + wd * P[pi];" : ""}
  let b = mu * B[bi] + g;
  B[bi] = b;
  P[pi] = P[pi] - lr * ${nesterov ? "(g + mu * b)" : "b"};
}
`;
  rt.run({ name: "sgd", code, grid, bindings: [p, g, buf, hyper, gradScale] });
}
