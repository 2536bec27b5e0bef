// Optimiser updates and global-norm gradient clipping, entirely on the GPU: the clip
// coefficient is computed by a kernel and read by the update kernels, so a step never waits.
//
// hyper (f32[8], written by the trainer before each step): lr, beta1 | momentum, beta2,
// eps, weight decay, 1 - beta1^t, 1 - beta2^t, (unused)
// gradScale (f32[8], written by clipCoefficient): [0] the factor the update kernels apply to
// the raw gradients (clip coefficient / loss scale), [1] the global gradient norm (unscaled),
// [2] 1 when the gradients are not finite (the update kernels then skip the step), [3] the
// loss scale (the backward seed), [4] finite steps since the scale last changed, [5] steps
// skipped in all. The loss scale is dynamic under mixed precision, as torch's GradScaler:
// halved on overflow, doubled after LOSS_SCALE_GROWTH finite steps; it stays 1 in f32.
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

export const LOSS_SCALE_INIT = 1024, LOSS_SCALE_GROWTH = 200, LOSS_SCALE_MAX = 65536;

/** The gradScale state before the first step (see the layout above). */
export function initialGradScale(dynamic: boolean): number[] {
  return [1, 0, 0, dynamic ? LOSS_SCALE_INIT : 1, 0, 0, 0, 0];
}

/**
 * gradScale[0] = min(1, maxNorm / (||g|| + 1e-6)) / lossScale, with ||g|| the unscaled norm;
 * maxNorm <= 0 disables clipping. Non-finite gradients set the skip flag (and, with a
 * dynamic loss scale, halve it).
 */
export function clipCoefficient(
  rt: Runtime,
  norms: Tensor,
  gradScale: Tensor,
  maxNorm: number,
  dynamic = false,
): void {
  const n = norms.size;
  const code =
    `// clip coefficient over ${n} tensors, max norm ${maxNorm}, dynamic loss scale ${dynamic}
${binding(0, "Norms", norms, "read")}
${binding(1, "S", gradScale, "read_write")}
@compute @workgroup_size(1)
fn main() {
  var t = 0.0;
  for (var i = 0u; i < ${n}u; i++) { t += Norms[${norms.bindOffset}u + i]; }
  let scale = S[3];
  let norm = sqrt(t) / scale;
  // isfinite by the exponent bits: x != x comparisons may be folded away by fast math.
  let finite = (bitcast<u32>(norm) & 0x7f800000u) != 0x7f800000u;
  S[0] = select(0.0, ${
      maxNorm > 0 ? `min(1.0, ${f32lit(maxNorm)} / (norm + 1e-6))` : "1.0"
    } / scale, finite);
  S[1] = norm;
  S[2] = select(1.0, 0.0, finite);
  if (!finite) { S[5] = S[5] + 1.0; }
  ${
      dynamic
        ? `if (!finite) {
    S[3] = max(scale * 0.5, 1.0);
    S[4] = 0.0;
  } else if (S[4] + 1.0 >= ${LOSS_SCALE_GROWTH}.0) {
    S[3] = min(scale * 2.0, ${LOSS_SCALE_MAX}.0);
    S[4] = 0.0;
  } else {
    S[4] = S[4] + 1.0;
  }`
        : ""
    }
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
  const V = [p, g, m, v].every((t) => t.bindOffset % 4 === 0) && p.size % 4 === 0;
  const W = V ? 4 : 1, T = V ? "vec4<f32>" : "f32";
  const n = p.size / W;
  const grid = grid1d(n, WG);
  const off = (t: Tensor) => t.bindOffset / W;
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
  if (i >= ${n}u || S[2] != 0.0) { return; } // out of range, or a skipped step
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
  if (i >= ${n}u || S[2] != 0.0) { return; } // out of range, or a skipped step
  let lr = H[0]; let mu = H[1]; let wd = H[4];
  let pi = ${p.bindOffset}u + i;
  let bi = ${buf.bindOffset}u + i;
  var g = G[${g.bindOffset}u + i] * S[0];
  ${decay ? "g = g + wd * P[pi];" : ""}
  let b = mu * B[bi] + g;
  B[bi] = b;
  P[pi] = P[pi] - lr * ${nesterov ? "(g + mu * b)" : "b"};
}
`;
  rt.run({ name: "sgd", code, grid, bindings: [p, g, buf, hyper, gradScale] });
}
