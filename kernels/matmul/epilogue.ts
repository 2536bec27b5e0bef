// The matmul epilogue every kernel family ends with: per row of C this invocation owns, add the
// bias, store the pre-activation, apply the activation, accumulate into C, store; vec4 stores
// where C allows them, else four guarded scalar stores.
import type { Plan } from "./plan.ts";

/** WGSL of the activation of a vec4<f32> expression. */
function activation(p: Plan, v: string): string {
  return p.s.act === "gelu"
    ? `vec4<f32>(gelu_(${v}.x), gelu_(${v}.y), gelu_(${v}.z), gelu_(${v}.w))`
    : p.s.act === "relu"
    ? `max(${v}, vec4<f32>(0.0))`
    : v;
}

/** Stores column vector `col` of v (bias added) through the vec4 binding of C. */
function storeVec4(p: Plan, col: string): string[] {
  const { s, T } = p;
  const L = [`      if (${col} < ${p.N}u) {`, `        let ci = (row + ${col}) / 4u;`];
  if (s.preact) L.push(`        Pre[ci] = vec4<${T}>(v);`);
  L.push(`        v = ${activation(p, "v")};`);
  if (s.accumulate) L.push(`        v += vec4<f32>(C[ci]);`);
  L.push(`        C[ci] = vec4<${T}>(v);`, `      }`);
  return L;
}

/** Stores column vector `col` of v (bias added) as four scalars, each inside C's width. */
function storeScalars(p: Plan, col: string): string[] {
  const { s, T } = p;
  const L = [`      let w = ${activation(p, "v")};`];
  for (let e = 0; e < 4; e++) {
    L.push(`      if (${col} + ${e}u < ${p.N}u) {`);
    L.push(`        let ci = row + ${col} + ${e}u;`);
    if (s.preact) L.push(`        Pre[ci] = ${T}(v[${e}]);`);
    L.push(
      s.accumulate
        ? `        C[ci] = ${T}(w[${e}] + f32(C[ci]));`
        : `        C[ci] = ${T}(w[${e}]);`,
      `      }`,
    );
  }
  return L;
}

/** The epilogue's WGSL: bias, pre-activation, activation, accumulate, store. */
export function epilogue(p: Plan): string[] {
  const { s, P } = p;
  const L: string[] = [];
  for (let q = 0; q < P; q++) {
    if (s.bias) {
      L.push(
        `  let bias${q} = vec4<f32>(${
          [0, 1, 2, 3].map((e) => p.f(`Bias[${s.biasOffset}u + cb${4 * q + e}]`)).join(", ")
        });`,
      );
    }
  }
  for (let i = 0; i < p.TM; i++) {
    L.push(`  if (m0 + ${p.rowOff(i)}u < ${p.M}u) {`);
    L.push(`    let row = cBase + (m0 + ${p.rowOff(i)}u) * ${s.ldc}u;`);
    for (let q = 0; q < P; q++) {
      L.push(`    {`);
      L.push(`      var v = acc${i}_${q}${s.bias ? ` + bias${q}` : ""};`);
      const col = `n0 + ${p.colOff(q)}u`;
      L.push(...(p.cVec ? storeVec4(p, col) : storeScalars(p, col)));
      L.push(`    }`);
    }
    L.push(`  }`);
  }
  return L;
}
