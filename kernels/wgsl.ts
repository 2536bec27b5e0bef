// Small helpers shared by the WGSL builders: headers, bindings, common functions.
import type { DType } from "../runtime/dtype.ts";
import { wgslType } from "../runtime/dtype.ts";
import { shapeStr, type Tensor } from "../runtime/tensor.ts";

export type Access = "read" | "read_write";

/** `enable f16;` when any binding stores f16. */
export function header(...dtypes: DType[]): string {
  return dtypes.includes("f16") ? "enable f16;\n" : "";
}

export function binding(
  index: number,
  name: string,
  t: { dtype: DType },
  access: Access,
  vec4 = false,
): string {
  const el = wgslType(t.dtype);
  const type = vec4 ? `vec4<${el}>` : el;
  return `@group(0) @binding(${index}) var<storage, ${access}> ${name}: array<${type}>;`;
}

/** Errors that name the op and the shapes involved. */
export class ShapeError extends Error {
  constructor(op: string, problem: string, ...tensors: (Tensor | readonly number[])[]) {
    const shapes = tensors.map((t) => Array.isArray(t) ? shapeStr(t) : String(t)).join(", ");
    super(`${op}: ${problem}${shapes ? ` (got ${shapes})` : ""}`);
    this.name = "ShapeError";
  }
}

export function requireDtype(op: string, t: Tensor, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) {
    throw new ShapeError(op, `unsupported dtype ${t.dtype}; supported: ${allowed.join(", ")}`, t);
  }
}

export function requireContiguous(op: string, t: Tensor): void {
  if (!t.isContiguous) throw new ShapeError(op, `needs a contiguous tensor`, t);
}

export function requireSameDtype(op: string, ...ts: Tensor[]): void {
  if (ts.some((t) => t.dtype !== ts[0].dtype)) {
    throw new ShapeError(op, `dtypes differ: ${ts.map((t) => t.dtype).join(", ")}`, ...ts);
  }
}

/** erf to ~1.5e-7 (Abramowitz & Stegun 7.1.26); WGSL has none. */
export const ERF_WGSL = `
fn erf_(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
    + 0.254829592) * t * exp(-x * x);
  return select(-y, y, x >= 0.0);
}
fn gelu_(x: f32) -> f32 { return 0.5 * x * (1.0 + erf_(x * 0.7071067811865476)); }
fn gelu_grad_(x: f32) -> f32 {
  return 0.5 * (1.0 + erf_(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x);
}
`;

/**
 * A loop bound of n that the shader compiler cannot fold (arrayLength of a runtime-sized
 * binding is unknown to it), so it keeps a per-row loop rolled. Fully unrolled, llvmpipe
 * turns each iteration's loads into lane-by-lane gathers: layerNorm.dx's 16-step row loop
 * took 3.5 s to compile, and 0.14 s rolled. The array must have at least one element.
 */
export function rolled(n: number, array: string): string {
  return `select(0u, ${n}u, arrayLength(&${array}) > 0u)`;
}

/** Format a number as a WGSL f32 literal. */
export function f32lit(v: number): string {
  if (!Number.isFinite(v)) {
    return v > 0 ? "bitcast<f32>(0x7f800000u)" : v < 0 ? "bitcast<f32>(0xff800000u)" : "0.0";
  }
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}
