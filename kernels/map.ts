// map: out[i] = f(in0[i], in1[i], ...) over an output shape, every operand a strided view
// with numpy broadcasting. One kernel gives elementwise arithmetic, activations and their
// gradients, broadcasts (positional-embedding add), permutes / contiguous copies,
// concatenation (writing into a view of the output) and slices.
import type { KernelSpec } from "../runtime/kernel.ts";
import { flatIndex, grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { type DType, wgslType } from "../runtime/dtype.ts";
import { numel, type Shape, shapeStr, Tensor } from "../runtime/tensor.ts";
import { binding, ERF_WGSL, header, ShapeError } from "./wgsl.ts";

const WG = 64;

/** numpy broadcasting of shapes; throws naming the op. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v !== 1 && d !== 1 && v !== d) {
        throw new ShapeError(op, "shapes do not broadcast", ...shapes);
      }
      if (v !== 1) d = v;
    }
    out.push(d);
  }
  return out;
}

/** Strides of `t` seen through a broadcast to `shape` (0 on broadcast axes). */
function broadcastStrides(t: Tensor, shape: Shape): number[] {
  const lead = shape.length - t.rank;
  return shape.map((_, i) => {
    const j = i - lead;
    return j < 0 || t.shape[j] === 1 ? 0 : t.strides[j];
  });
}

/** WGSL that computes each operand's element offset from the flat output index `i`. */
function offsets(shape: Shape, operandStrides: number[][], bases: number[]): string {
  const L: string[] = [];
  if (shape.length === 1) {
    // 1-D: offset = base + i * stride, no division at all.
    bases.forEach((b, k) => {
      const s = operandStrides[k][0];
      L.push(`  let o${k} = ${b}u${s === 0 ? "" : s === 1 ? " + i" : ` + i * ${s}u`};`);
    });
    return L.join("\n");
  }
  bases.forEach((b, k) => L.push(`  var o${k} = ${b}u;`));
  L.push(`  var r = i;`);
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] === 1) continue;
    const used = operandStrides.some((s) => s[d] !== 0);
    if (!used) {
      L.push(`  r = r / ${shape[d]}u;`);
      continue;
    }
    L.push(`  { let c = r % ${shape[d]}u; r = r / ${shape[d]}u;`);
    operandStrides.forEach((s, k) => {
      if (s[d] !== 0) L.push(`    o${k} += c * ${s[d]}u;`);
    });
    L.push(`  }`);
  }
  return L.join("\n");
}

export interface MapOptions {
  /** Write into this (possibly strided) view instead of a new contiguous tensor. */
  out?: Tensor;
  /** out += f(...) */
  accumulate?: boolean;
  dtype?: DType;
  /** Extra WGSL functions the expression uses. */
  helpers?: string;
  name?: string;
}

/**
 * Merges adjacent axes along which every operand is contiguous, and drops size-1 axes, so
 * most maps become 1-D (index arithmetic is the expensive part on CPU adapters: each
 * division by a shape is per-lane scalar code).
 */
function simplify(shape: number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const keep = shape.map((_, i) => i).filter((i) => shape[i] !== 1);
  let sh = keep.map((i) => shape[i]);
  let st = strides.map((s) => keep.map((i) => s[i]));
  for (let d = sh.length - 1; d > 0; d--) {
    // axis d-1 can merge into d when each operand's stride[d-1] == stride[d] * shape[d]
    if (st.every((s) => s[d - 1] === s[d] * sh[d])) {
      sh = [...sh.slice(0, d - 1), sh[d - 1] * sh[d], ...sh.slice(d + 1)];
      st = st.map((s) => [...s.slice(0, d - 1), s[d], ...s.slice(d + 1)]);
    }
  }
  return { shape: sh, strides: st };
}

/**
 * Records out = expr over inputs, where expr is WGSL over f32 values v0, v1, ..., `yo` (the
 * output's current value, for in-place updates) and `i` (the flat output index, u32). Each invocation computes 4 consecutive outputs when the
 * innermost axis allows it (vec4-friendly on every adapter).
 */
export function map(rt: Runtime, inputs: Tensor[], expr: string, o: MapOptions = {}): Tensor {
  const name = o.name ?? "map";
  const shape = o.out ? [...o.out.shape] : broadcastShapes(name, ...inputs.map((t) => t.shape));
  if (o.out) broadcastShapes(name, shape, ...inputs.map((t) => t.shape));
  const dtype = o.dtype ?? o.out?.dtype ?? inputs[0]?.dtype ?? "f32";
  for (const t of inputs) {
    if (t.dtype === "f16" && !rt.gpu.f16) throw new ShapeError(name, "f16 needs shader-f16", t);
  }
  const out = o.out ?? rt.empty(shape, dtype, name);
  const n = numel(shape);
  if (n === 0) return out;
  const raw = inputs.map((t) => broadcastStrides(t, shape));
  raw.push(broadcastStrides(out, shape));
  const { shape: sh, strides } = simplify(shape, raw);
  // Unroll 4 outputs per invocation along the innermost axis when it divides by 4.
  const inner = sh.length ? sh[sh.length - 1] : 1;
  const U = inner % 4 === 0 ? 4 : 1;
  const innerStrides = strides.map((s) => (s.length ? s[s.length - 1] : 0));
  const groups = n / U;
  const grid = grid1d(groups, WG);
  const T = wgslType(out.dtype);
  const outK = inputs.length;
  const lines: string[] = [];
  for (let u = 0; u < U; u++) {
    const at = (k: number) => (u === 0 ? `o${k}` : `o${k} + ${u * innerStrides[k]}u`);
    const loads = inputs.map((_, k) => `    let v${k} = f32(X${k}[${at(k)}]);`).join("\n") +
      (expr.includes("yo") ? `\n    let yo = f32(Y[${at(outK)}]);` : "");
    const value = o.accumulate ? `f32(Y[${at(outK)}]) + (${expr})` : `(${expr})`;
    lines.push(`  {\n    let i = i0 + ${u}u;\n${loads}\n    Y[${at(outK)}] = ${T}(${value});\n  }`);
  }
  const code = `${header(out.dtype, ...inputs.map((t) => t.dtype))}// ${name} ${shapeStr(shape)}
${inputs.map((t, k) => binding(k, `X${k}`, t, "read")).join("\n")}
${binding(outK, "Y", out, "read_write")}
${expr.includes("gelu") ? ERF_WGSL : ""}${o.helpers ?? ""}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = ${flatIndex(grid, WG)};
  if (g >= ${groups}u) { return; }
  let i = g * ${U}u;
  let i0 = i;
${offsets(sh, strides, [...inputs.map((t) => t.bindOffset), out.bindOffset])}
${lines.join("\n")}
}
`;
  const spec: KernelSpec = { name, code, grid, bindings: [...inputs, out] };
  rt.run(spec);
  return out;
}

/** A contiguous copy of a (strided) view. */
export function contiguous(rt: Runtime, t: Tensor): Tensor {
  return t.isContiguous ? t : map(rt, [t], "v0", { name: "contiguous" });
}

/** Copies `t` permuted by `axes` into a new contiguous tensor. */
export function permute(rt: Runtime, t: Tensor, axes: readonly number[]): Tensor {
  if (axes.length !== t.rank || [...axes].sort().some((a, i) => a !== i)) {
    throw new ShapeError("permute", `axes ${JSON.stringify(axes)} are not a permutation`, t);
  }
  return map(rt, [t.permuteView(axes)], "v0", { name: "permute" });
}

/** A view of `len` entries from `start` along `axis` (no copy). */
export function narrow(t: Tensor, axis: number, start: number, len: number): Tensor {
  if (start < 0 || start + len > t.shape[axis]) {
    throw new ShapeError("narrow", `[${start}, ${start + len}) out of range on axis ${axis}`, t);
  }
  const shape = [...t.shape];
  shape[axis] = len;
  return new Tensor(
    t.rt,
    t.storage,
    shape,
    t.dtype,
    t.offset + start * t.strides[axis],
    t.strides,
  );
}

/** Concatenates along `axis` by writing each input into a view of the output. */
export function concat(rt: Runtime, ts: Tensor[], axis: number): Tensor {
  const first = ts[0];
  for (const t of ts) {
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
      throw new ShapeError("concat", `shapes differ outside axis ${axis}`, ...ts);
    }
  }
  const shape = [...first.shape];
  shape[axis] = ts.reduce((a, t) => a + t.shape[axis], 0);
  const out = rt.empty(shape, first.dtype, "concat");
  let at = 0;
  for (const t of ts) {
    map(rt, [t], "v0", { out: narrow(out, axis, at, t.shape[axis]), name: "concat" });
    at += t.shape[axis];
  }
  return out;
}

/** Fills a tensor (or view) with a constant. */
export function fill(rt: Runtime, t: Tensor, value: number): Tensor {
  return map(rt, [], String(Number.isInteger(value) ? `${value}.0` : value), {
    out: t,
    name: "fill",
  });
}
