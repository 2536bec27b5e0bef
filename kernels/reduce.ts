// reduce: sum / mean / max / sum of squares over any set of axes. One invocation per output
// element walks the reduced elements; long reductions with few outputs are split in two
// passes so every core has work.
import { flatIndex, grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { numel, type Tensor } from "../runtime/tensor.ts";
import { binding, f32lit, header, ShapeError } from "./wgsl.ts";
import { map } from "./map.ts";

export type ReduceOp = "sum" | "mean" | "max" | "sumsq";
const WG = 64;

export interface ReduceOptions {
  keepDims?: boolean;
  /** Write (or accumulate) into this contiguous tensor. */
  out?: Tensor;
  accumulate?: boolean;
}

export function reduce(
  rt: Runtime,
  x: Tensor,
  axes: readonly number[],
  op: ReduceOp,
  o: ReduceOptions = {},
): Tensor {
  const ax = [...new Set(axes.map((a) => (a < 0 ? a + x.rank : a)))].sort((a, b) => a - b);
  if (ax.some((a) => a < 0 || a >= x.rank)) {
    throw new ShapeError("reduce", `axes ${JSON.stringify(axes)} out of range`, x);
  }
  const kept = x.shape.map((_, i) => i).filter((i) => !ax.includes(i));
  const outShape = o.keepDims
    ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d))
    : kept.map((i) => x.shape[i]);
  const nOut = numel(kept.map((i) => x.shape[i]));
  const nRed = numel(ax.map((i) => x.shape[i]));
  // Split long reductions with few outputs: pass 1 sums chunks, pass 2 sums the chunks (itself
  // split again when the chunks are many). Spread (GPUs): up to 4096 chunks of at least 256,
  // chunk c reading elements c, c + chunks, ... so neighbouring invocations read neighbouring
  // elements; else at most 256 contiguous runs of 1024 or more.
  if (nRed >= 8192 && nOut < 256 && op !== "max") {
    const spread = rt.spread;
    const chunks = spread
      ? Math.min(4096, Math.ceil(nRed / 256))
      : Math.min(256, Math.ceil(nRed / 1024));
    const partial = reduceKernel(rt, x, ax, op === "mean" ? "sum" : op, chunks, {}, spread);
    const pass2 = (r: ReduceOptions) => {
      const y = reduce(rt, partial, [0], "sum", r);
      return r.out ? y : y.view(outShape);
    };
    if (op !== "mean") return pass2({ out: o.out, accumulate: o.accumulate });
    const total = pass2({});
    return map(rt, [total], `v0 * ${f32lit(1 / nRed)}`, {
      out: o.out,
      accumulate: o.accumulate,
      name: "reduce.mean",
    });
  }
  return reduceKernel(rt, x, ax, op, 1, { ...o, outShape });
}

function reduceKernel(
  rt: Runtime,
  x: Tensor,
  ax: number[],
  op: ReduceOp,
  chunks: number,
  o: ReduceOptions & { outShape?: number[] },
  interleave = false,
): Tensor {
  const kept = x.shape.map((_, i) => i).filter((i) => !ax.includes(i));
  const nOut = numel(kept.map((i) => x.shape[i]));
  const nRed = numel(ax.map((i) => x.shape[i]));
  const shape = chunks > 1 ? [chunks, ...kept.map((i) => x.shape[i])] : o.outShape!;
  const out = o.out ?? rt.empty(shape, x.dtype === "f16" ? "f16" : "f32", `reduce.${op}`);
  if (o.out && out.size !== chunks * nOut) {
    throw new ShapeError("reduce", `output has ${out.size} elements, expected ${nOut}`, out);
  }
  const n = chunks * nOut;
  const grid = grid1d(n, WG);
  const per = Math.ceil(nRed / chunks);
  // Offset of the kept coordinates, from output index q.
  const keptCode: string[] = [`  var r = q;`, `  var base = ${x.bindOffset}u;`];
  for (let j = kept.length - 1; j >= 0; j--) {
    const d = kept[j];
    keptCode.push(`  base += (r % ${x.shape[d]}u) * ${x.strides[d]}u; r = r / ${x.shape[d]}u;`);
  }
  const redCode: string[] = [`    var s = e;`, `    var off = base;`];
  for (let j = ax.length - 1; j >= 0; j--) {
    const d = ax[j];
    redCode.push(`    off += (s % ${x.shape[d]}u) * ${x.strides[d]}u; s = s / ${x.shape[d]}u;`);
  }
  const init = op === "max" ? "-3.402823e38" : "0.0";
  const update = op === "max"
    ? "acc = max(acc, v);"
    : op === "sumsq"
    ? "acc = fma(v, v, acc);"
    : "acc += v;";
  const fin = op === "mean" ? `acc / ${nRed}.0` : "acc";
  const T = out.dtype;
  const code = `${header(x.dtype, out.dtype)}// reduce ${op} axes ${ax} of [${x.shape}]
${binding(0, "X", x, "read")}
${binding(1, "Y", out, "read_write")}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${flatIndex(grid, WG)};
  if (i >= ${n}u) { return; }
  let chunk = i / ${nOut}u;
  let q = i % ${nOut}u;
${keptCode.join("\n")}
  var acc: f32 = ${init};
  ${
    interleave
      ? `for (var e = chunk; e < ${nRed}u; e += ${chunks}u) {`
      : `let e1 = min(chunk * ${per}u + ${per}u, ${nRed}u);
  for (var e = chunk * ${per}u; e < e1; e++) {`
  }
${redCode.join("\n")}
    let v = f32(X[off]);
    ${update}
  }
  let y = ${fin};
  Y[${out.bindOffset}u + i] = ${T}(${o.accumulate ? `f32(Y[${out.bindOffset}u + i]) + y` : "y"});
}
`;
  rt.run({ name: `reduce.${op}`, code, grid, bindings: [x, out] });
  return out;
}
