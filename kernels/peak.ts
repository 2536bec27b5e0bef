// The adapter's FMA rate: independent vec4 FMA chains, nothing loaded in the loop. This is
// the "peak" that matmul efficiency is quoted against, measured in the same run.
import type { KernelSpec } from "../runtime/kernel.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { binding } from "./wgsl.ts";

export const PEAK_WG = 64;
const CHAINS = 8;

/** FLOPs done by one dispatch of peakKernel(groups, iters). */
export function peakFlops(groups: number, iters: number): number {
  return groups * PEAK_WG * iters * CHAINS * 4 * 2;
}

export function peakKernel(out: Tensor, groups: number, iters: number): KernelSpec {
  const init = [...Array(CHAINS).keys()].map((c) =>
    `  var a${c} = vec4<f32>(f32(i) * 1e-9 + ${c + 1}.0);`
  ).join("\n");
  const body = [...Array(CHAINS).keys()].map((c) => `    a${c} = fma(a${c}, m, s);`).join("\n");
  const sum = [...Array(CHAINS).keys()].map((c) => `a${c}`).join(" + ");
  const code = `${binding(0, "Out", out, "read_write")}
@compute @workgroup_size(${PEAK_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let m = vec4<f32>(0.9999999);
  let s = vec4<f32>(1e-7);
${init}
  for (var k = 0u; k < ${iters}u; k++) {
${body}
  }
  let r = ${sum};
  if (r.x == 12345.678) { Out[i % 4u] = r.y; }
}
`;
  return { name: "peak", code, grid: [groups, 1, 1], bindings: [out] };
}
