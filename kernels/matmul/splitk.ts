// Split-K for products with few output tiles and a long K (the heatmap embeddings' weight
// gradients: 768 x 156 over K = 53,312; a block's weight gradients: 128 x 128 over batch x
// tokens): K is cut into S slices, each slice's product is one batch entry of the ordinary
// kernel (S times the workgroups), written as f32 partials (S, M, N); a second pass sums the
// partials and applies the epilogue (bias, pre-activation, activation, accumulation).
import { flatIndex, grid1d } from "../../runtime/kernel.ts";
import type { Runtime } from "../../runtime/runtime.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import type { MatmulShape } from "../matmul.ts";
import { binding, ERF_WGSL, header } from "../wgsl.ts";

/** The largest divisor of k that is at most `most` (slices of equal length). */
export function splitFactor(k: number, most: number): number {
  for (let s = Math.min(most, k); s > 1; s--) if (k % s === 0) return s;
  return 1;
}

/** The shape of the slices: S batch entries of K / S, into contiguous f32 partials. */
export function sliceShape(s: MatmulShape, slices: number, partials: Tensor): MatmulShape {
  const ks = s.k / slices;
  return {
    ...s,
    batch: slices,
    k: ks,
    inner: 1,
    aBatchStride: s.transA ? ks * s.lda : ks,
    bBatchStride: s.transB ? ks : ks * s.ldb,
    cBatchStride: s.m * s.n,
    aInnerStride: 0,
    bInnerStride: 0,
    cInnerStride: 0,
    cOffset: partials.bindOffset,
    ldc: s.n,
    bias: false,
    biasOffset: 0,
    act: "none",
    preact: false,
    accumulate: false,
  };
}

const WG = 64;

/** C = epilogue(sum over slices of the partials), C possibly strided (ldc), batch 1. */
export function reduceSlices(
  rt: Runtime,
  s: MatmulShape,
  slices: number,
  t: { partials: Tensor; c: Tensor; bias?: Tensor; preact?: Tensor },
): void {
  const { m: M, n: N } = s, T = s.dtype === "f16" ? "f16" : "f32";
  const grid = grid1d(M * N, WG);
  const v = (e: string) => `f32(${e})`;
  const act = s.act === "gelu" ? "gelu_(v)" : s.act === "relu" ? "max(v, 0.0)" : "v";
  const binds = [
    binding(0, "P", t.partials, "read"),
    binding(1, "C", t.c, "read_write"),
  ];
  const list = [t.partials, t.c];
  if (s.bias) (binds.push(binding(list.length, "Bias", t.bias!, "read")), list.push(t.bias!));
  if (s.preact) {
    binds.push(binding(list.length, "Pre", t.preact!, "read_write"));
    list.push(t.preact!);
  }
  const code = `${header(s.dtype)}// matmul split-K reduce ${JSON.stringify({ ...s, slices })}
${binds.join("\n")}
${s.act === "gelu" ? ERF_WGSL : ""}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = ${flatIndex(grid, WG)};
  if (idx >= ${M * N}u) { return; }
  let row = idx / ${N}u;
  let col = idx % ${N}u;
  var v = 0.0;
  for (var z = 0u; z < ${slices}u; z++) {
    v += P[${t.partials.bindOffset}u + z * ${M * N}u + idx];
  }
  ${s.bias ? `v += ${v(`Bias[${s.biasOffset}u + col]`)};` : ""}
  ${s.preact ? `Pre[${t.preact!.bindOffset}u + idx] = ${T}(v);` : ""}
  v = ${act};
  let ci = ${s.cOffset}u + row * ${s.ldc}u + col;
  ${s.accumulate ? `v += ${v("C[ci]")};` : ""}
  C[ci] = ${T}(v);
}
`;
  rt.run({ name: `matmul split-K reduce ${M}x${N} /${slices}`, code, grid, bindings: list });
}
