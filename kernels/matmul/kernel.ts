// matmulKernel: the WGSL of one product under one tiling. The family of the tiling (register,
// subgroup, shared: one file each) supplies its vec4 loads, declarations, entry point and K
// loop; around them every kernel has the same frame: bindings, batch offsets, this
// invocation's rows and columns and accumulators (prologue), and the epilogue
// (./epilogue.ts). Shapes are baked in as constants; out-of-range rows and columns are
// clamped on load and skipped on store, so any shape works.
import type { KernelSpec } from "../../runtime/kernel.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import type { MatmulShape, MatmulTiling } from "../matmul.ts";
import { binding, ERF_WGSL, header } from "../wgsl.ts";
import { epilogue } from "./epilogue.ts";
import { type Family, type Plan, plan, SUBGROUP } from "./plan.ts";
import { register } from "./register.ts";
import { shared } from "./shared.ts";
import { subgroup } from "./subgroup.ts";

const FAMILIES: Record<MatmulTiling["kind"], Family> = { register, subgroup, shared };

/** The operands of one kernel: C = A B (+ Bias), Pre the pre-activation. */
export interface MatmulTensors {
  a: Tensor;
  b: Tensor;
  c: Tensor;
  bias?: Tensor;
  preact?: Tensor;
}

/** The rows of A this invocation loads, its columns of B and C, its zeroed accumulators. */
function prologue(p: Plan): string[] {
  const L: string[] = [];
  const sub = p.t.kind === "subgroup";
  for (let i = 0; i < p.loadRows; i++) {
    const r = sub ? `m0 + ${i * SUBGROUP}u + lane` : `m0 + ${p.rowOff(i)}u`;
    L.push(`  let ra${i} = ${p.clampM(r, p.M - 1)};`);
  }
  for (let j = 0; j < p.TN; j++) {
    L.push(`  let cb${j} = ${p.clampN(`n0 + ${p.colOff(j >> 2) + (j & 3)}u`, p.N - 1)};`);
  }
  for (let i = 0; i < p.TM; i++) {
    for (let q = 0; q < p.P; q++) L.push(`  var acc${i}_${q} = vec4<f32>(0.0);`);
  }
  return L;
}

/** The WGSL bindings (A, B, C, then Bias and Pre where used) and the tensors bound. */
function bindings(p: Plan, x: MatmulTensors): { decls: string[]; list: Tensor[] } {
  const { s } = p;
  const decls = [
    binding(0, "A", { dtype: s.dtype }, "read", p.aVec),
    binding(1, "B", { dtype: s.dtype }, "read", p.bVec),
    binding(2, "C", { dtype: s.dtype }, "read_write", p.cVec),
  ];
  const list = [x.a, x.b, x.c];
  if (s.bias) {
    decls.push(binding(list.length, "Bias", { dtype: s.dtype }, "read"));
    list.push(x.bias!);
  }
  if (s.preact) {
    decls.push(binding(list.length, "Pre", { dtype: s.dtype }, "read_write", p.cVec));
    list.push(x.preact!);
  }
  return { decls, list };
}

export function matmulKernel(s: MatmulShape, t: MatmulTiling, x: MatmulTensors): KernelSpec {
  const family = FAMILIES[t.kind];
  const p = plan(s, t, family.vec4(s, t));
  const { M, N, K } = p;
  const L = [...prologue(p), ...family.body(p), ...epilogue(p)];
  const binds = bindings(p, x);
  const code = `${header(s.dtype)}// matmul ${JSON.stringify({ ...s })} ${JSON.stringify(t)}
${binds.decls.join("\n")}
${s.act === "gelu" ? ERF_WGSL : ""}
${family.decls(p)}
${family.entry(p)}
  let zo = wid.z / ${s.inner}u;
  let zi = wid.z % ${s.inner}u;
  let aBase = ${s.aOffset}u + zo * ${s.aBatchStride}u + zi * ${s.aInnerStride}u;
  let bBase = ${s.bOffset}u + zo * ${s.bBatchStride}u + zi * ${s.bInnerStride}u;
  let cBase = ${s.cOffset}u + zo * ${s.cBatchStride}u + zi * ${s.cInnerStride}u;
  let aBase4 = aBase / 4u;
  let bBase4 = bBase / 4u;
  _ = aBase4; _ = bBase4;
${L.join("\n")}
}
`;
  return {
    // The shape in the name tells profiles and error messages which product this is.
    name: `matmul ${s.batch > 1 ? s.batch + "x" : ""}${M}x${N}x${K}${s.transA ? " tA" : ""}${
      s.transB ? " tB" : ""
    } ${t.kind} ${t.tm}x${t.tn}`,
    code,
    grid: [Math.ceil(N / p.tile.cols), Math.ceil(M / p.tile.rows), s.batch],
    bindings: binds.list,
  };
}
