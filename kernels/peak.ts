// The adapter's FMA rate: independent multiply-add chains, unrolled, nothing loaded in the
// loop. This is the "peak" that kernel efficiency is quoted against, measured in the same
// run. On lavapipe 12 scalar chains unrolled 4x fill the AVX2 pipes best (vec4 chains
// spill: each vec4 lane value is four 8-wide registers); real GPUs saturate either way.
import type { KernelSpec } from "../runtime/kernel.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { binding } from "./wgsl.ts";

export const PEAK_WG = 64;
const CHAINS = 12;
const UNROLL = 4;

/** FLOPs done by one dispatch of peakKernel(groups, iters). */
export function peakFlops(groups: number, iters: number): number {
  return groups * PEAK_WG * iters * UNROLL * CHAINS * 2;
}

export function peakKernel(out: Tensor, groups: number, iters: number): KernelSpec {
  const chains = [...Array(CHAINS).keys()];
  const init = chains.map((c) => `  var a${c} = f32(gid.x) * 1e-9 + ${c + 1}.0;`).join("\n");
  const step = chains.map((c) => `    a${c} = a${c} * m + s;`).join("\n");
  const body = Array(UNROLL).fill(step).join("\n");
  const code = `${binding(0, "Out", out, "read_write")}
@compute @workgroup_size(${PEAK_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = 0.9999999;
  let s = 1e-7;
${init}
  for (var k = 0u; k < ${iters}u; k++) {
${body}
  }
  let r = ${chains.map((c) => `a${c}`).join(" + ")};
  if (r == 12345.678) { Out[gid.x % 4u] = r; }
}
`;
  return { name: "peak", code, grid: [groups, 1, 1], bindings: [out] };
}
