// Cross-entropy with label smoothing, fused with log-softmax:
//   loss_b = -(1 - eps) log p[b, y_b] - (eps / K) sum_j log p[b, j]
//   dlogits[b, j] = (p[b, j] - (1 - eps) [j = y_b] - eps / K) * dloss_b
import { flatIndex, grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { binding, f32lit, header, requireContiguous, requireDtype, ShapeError } from "./wgsl.ts";

const WG = 64;

function check(logits: Tensor, labels: Tensor): { rows: number; k: number } {
  requireContiguous("crossEntropy", logits);
  requireDtype("crossEntropy", labels, ["i32"]);
  if (logits.rank !== 2 || labels.size !== logits.shape[0]) {
    throw new ShapeError("crossEntropy", "needs logits (B, K) and labels (B)", logits, labels);
  }
  return { rows: logits.shape[0], k: logits.shape[1] };
}

/** Per-sample losses (B) and log-sum-exp (B). Labels outside [0, K) give NaN, not garbage. */
export function crossEntropyForward(
  rt: Runtime,
  logits: Tensor,
  labels: Tensor,
  smoothing: number,
): { loss: Tensor; lse: Tensor } {
  const { rows, k } = check(logits, labels);
  const loss = rt.empty([rows], "f32", "crossEntropy.loss");
  const lse = rt.empty([rows], "f32", "crossEntropy.lse");
  const grid = grid1d(rows, WG);
  const code = `${header(logits.dtype)}// crossEntropy rows=${rows} k=${k}
${binding(0, "X", logits, "read")}
${binding(1, "Lab", labels, "read")}
${binding(2, "Loss", loss, "read_write")}
${binding(3, "Lse", lse, "read_write")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = ${flatIndex(grid, WG)};
  if (r >= ${rows}u) { return; }
  let b = ${logits.bindOffset}u + r * ${k}u;
  var m = -3.402823e38;
  for (var j = 0u; j < ${k}u; j++) { m = max(m, f32(X[b + j])); }
  var s = 0.0;
  var sumx = 0.0;
  for (var j = 0u; j < ${k}u; j++) { let v = f32(X[b + j]); s += exp(v - m); sumx += v; }
  let l = m + log(s);
  let y = Lab[${labels.bindOffset}u + r];
  if (y < 0 || y >= ${k}) { Loss[r] = bitcast<f32>(0x7fc00000u); Lse[r] = l; return; }
  let nll = l - f32(X[b + u32(y)]);
  let uniform_nll = l - sumx / ${k}.0;
  Loss[r] = ${f32lit(1 - smoothing)} * nll + ${f32lit(smoothing)} * uniform_nll;
  Lse[r] = l;
}
`;
  rt.run({ name: "crossEntropy", code, grid, bindings: [logits, labels, loss, lse] });
  return { loss, lse };
}

export function crossEntropyBackward(
  rt: Runtime,
  dloss: Tensor,
  logits: Tensor,
  labels: Tensor,
  lse: Tensor,
  smoothing: number,
): Tensor {
  const { rows, k } = check(logits, labels);
  const dx = rt.empty(logits.shape, logits.dtype, "crossEntropy.dlogits");
  const n = rows * k;
  const grid = grid1d(n, WG);
  const code = `${header(logits.dtype)}// crossEntropy backward rows=${rows} k=${k}
${binding(0, "DL", dloss, "read")}
${binding(1, "X", logits, "read")}
${binding(2, "Lab", labels, "read")}
${binding(3, "Lse", lse, "read")}
${binding(4, "DX", dx, "read_write")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${flatIndex(grid, WG)};
  if (i >= ${n}u) { return; }
  let r = i / ${k}u;
  let j = i % ${k}u;
  let p = exp(f32(X[${logits.bindOffset}u + i]) - Lse[r]);
  let hit = select(0.0, ${f32lit(1 - smoothing)}, Lab[${labels.bindOffset}u + r] == i32(j));
  DX[i] = ${dx.dtype}((p - hit - ${f32lit(smoothing / k)}) * f32(DL[${dloss.bindOffset}u + r * ${
    dloss.strides[0] ?? 1
  }u]));
}
`;
  rt.run({ name: "crossEntropy.dx", code, grid, bindings: [dloss, logits, labels, lse, dx] });
  return dx;
}
