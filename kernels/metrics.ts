// Counting correct predictions on the GPU (no readback per step): hits[b] = argmax(logits[b])
// == label[b], summed into a running counter.
import { flatIndex, grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { reduce } from "./reduce.ts";
import { binding, f32lit, header, requireContiguous } from "./wgsl.ts";

export function accumulateCorrect(
  rt: Runtime,
  logits: Tensor,
  labels: Tensor,
  counter: Tensor,
): void {
  requireContiguous("accuracy", logits);
  const [b, k] = logits.shape;
  const hits = rt.empty([b], "f32", "hits");
  const grid = grid1d(b, 64);
  const code = `${header(logits.dtype)}// accuracy hits b=${b} k=${k}
${binding(0, "X", logits, "read")}
${binding(1, "Lab", labels, "read")}
${binding(2, "H", hits, "read_write")}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = ${flatIndex(grid, 64)};
  if (r >= ${b}u) { return; }
  var best = 0u;
  var bv = f32(X[${logits.bindOffset}u + r * ${k}u]);
  for (var j = 1u; j < ${k}u; j++) {
    let v = f32(X[${logits.bindOffset}u + r * ${k}u + j]);
    if (v > bv) { bv = v; best = j; }
  }
  H[r] = select(0.0, 1.0, i32(best) == Lab[${labels.bindOffset}u + r]);
}
`;
  rt.run({ name: "accuracy", code, grid, bindings: [logits, labels, hits] });
  reduce(rt, hits, [0], "sum", { out: counter, accumulate: true });
}

/**
 * out[slot] += value[0] * scale, with the slot read from a tensor: a captured step adds its loss
 * into the logging interval it belongs to, and the host writes the slot before each replay.
 * A slot outside 0..n-1 records nothing.
 */
export function accumulateAt(
  rt: Runtime,
  value: Tensor,
  slot: Tensor,
  out: Tensor,
  scale: number,
): void {
  const n = out.size;
  const code = `${header(value.dtype)}// accumulate at slot n=${n} scale=${scale}
${binding(0, "V", value, "read")}
${binding(1, "Slot", slot, "read")}
${binding(2, "Out", out, "read_write")}
@compute @workgroup_size(1)
fn main() {
  let k = Slot[${slot.bindOffset}u];
  if (k < 0 || k >= ${n}) { return; } // outside the recorded intervals
  Out[${out.bindOffset}u + u32(k)] += f32(V[${value.bindOffset}u]) * ${f32lit(scale)};
}
`;
  rt.run({ name: "accumulate_at", code, grid: [1, 1, 1], bindings: [value, slot, out] });
}
