// Differentiable ops: each is a forward built from kernels/ plus its gradient rule, all in
// this one table. Shapes in comments: (B, T, C) etc.
import {
  attentionBackward,
  attentionForward,
  type AttentionImpl,
  chooseVariant,
  denseAttentionBackward,
  denseAttentionForward,
  packedPart,
} from "../kernels/attention/mod.ts";
import { crossEntropyBackward, crossEntropyForward } from "../kernels/cross_entropy.ts";
import { dropout as dropoutKernel } from "../kernels/dropout.ts";
import { layerNormBackward, layerNormForward } from "../kernels/layernorm.ts";
import { type Activation, matmul as matmulKernel } from "../kernels/matmul.ts";
import {
  broadcastShapes,
  concat as concatKernel,
  contiguous,
  map,
  narrow as narrowView,
} from "../kernels/map.ts";
import { reduce } from "../kernels/reduce.ts";
import { softmaxBackward, softmaxForward } from "../kernels/softmax.ts";
import { patchify as patchifyKernel, type Tubelet, unpatchify } from "../kernels/tubelet.ts";
import { f32lit, ShapeError } from "../kernels/wgsl.ts";
import type { Shape, Tensor } from "../runtime/tensor.ts";
import { gradSink, record } from "./tape.ts";
import type { Runtime } from "../runtime/runtime.ts";

const onesCache = new WeakMap<Runtime, Map<string, Tensor>>();
/** A persistent (1, n) row of ones per runtime and dtype (bias gradients as matmuls). */
function onesRow(rt: Runtime, n: number, dtype: "f32" | "f16" = "f32"): Tensor {
  let m = onesCache.get(rt);
  if (!m) onesCache.set(rt, m = new Map());
  const key = `${dtype}:${n}`;
  let t = m.get(key);
  if (!t) {
    m.set(
      key,
      t = rt.tensor(new Float32Array(n).fill(1), [1, n], dtype, { persistent: true, name: "ones" }),
    );
  }
  return t;
}

// ---- mixed precision --------------------------------------------------------------------

/** Casts between float dtypes; the gradient is cast back to the input's dtype. */
export function cast(x: Tensor, dtype: "f32" | "f16"): Tensor {
  if (x.dtype === dtype) return x;
  if (x.dtype === "i32") throw new ShapeError("cast", "integer tensors do not cast", x);
  const back = x.dtype;
  const y = map(x.rt, [x], "v0", { dtype, name: `cast.${dtype}` });
  return record(
    y,
    "cast",
    [x],
    (g) => [map(x.rt, [g], "v0", { dtype: back, name: `cast.${back}` })],
  );
}

/**
 * Mixed precision as torch.autocast does it: matmul-like ops (linear, matmul, attention,
 * layer norm, tubelets) take their f32 operands, f32 master weights included, as f16 when
 * the runtime's compute dtype is f16; the weights' gradients flow back through the cast
 * into their f32 .grad. Losses and batch statistics stay f32.
 */
export function autocast(x: Tensor): Tensor {
  return x.rt.computeDtype === "f16" && x.dtype === "f32" ? cast(x, "f16") : x;
}

/** Sums a broadcast gradient back down to `shape`. */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reduce(g.rt, g, axes, "sum", { keepDims: true }).view(shape);
}

// ---- elementwise ------------------------------------------------------------------------

type Binary = "add" | "sub" | "mul" | "div";
const BINARY_EXPR: Record<Binary, string> = {
  add: "v0 + v1",
  sub: "v0 - v1",
  mul: "v0 * v1",
  div: "v0 / v1",
};

function binary(op: Binary, a: Tensor, b: Tensor): Tensor {
  const rt = a.rt;
  broadcastShapes(op, a.shape, b.shape);
  const out = map(rt, [a, b], BINARY_EXPR[op], { name: op });
  return record(out, op, [a, b], (g) => {
    const da = op === "add" || op === "sub"
      ? g
      : op === "mul"
      ? map(rt, [g, b], "v0 * v1")
      : map(rt, [g, b], "v0 / v1");
    const db = op === "add"
      ? g
      : op === "sub"
      ? map(rt, [g], "-v0")
      : op === "mul"
      ? map(rt, [g, a], "v0 * v1")
      : map(rt, [g, a, b], "-v0 * v1 / (v2 * v2)");
    return [
      a.requiresGrad ? sumToShape(da, a.shape) : null,
      b.requiresGrad ? sumToShape(db, b.shape) : null,
    ];
  });
}

export const add = (a: Tensor, b: Tensor): Tensor => binary("add", a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binary("sub", a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary("mul", a, b);
export const div = (a: Tensor, b: Tensor): Tensor => binary("div", a, b);

/** x * c */
export function scale(x: Tensor, c: number): Tensor {
  const out = map(x.rt, [x], `v0 * ${f32lit(c)}`, { name: "scale" });
  return record(out, "scale", [x], (g) => [map(x.rt, [g], `v0 * ${f32lit(c)}`)]);
}

export function gelu(x: Tensor): Tensor {
  const out = map(x.rt, [x], "gelu_(v0)", { name: "gelu" });
  return record(out, "gelu", [x], (g) => [map(x.rt, [g, x], "v0 * gelu_grad_(v1)")]);
}

/** 1 / sqrt(x + eps) */
export function rsqrtPlus(x: Tensor, eps: number): Tensor {
  const out = map(x.rt, [x], `inverseSqrt(v0 + ${f32lit(eps)})`, { name: "rsqrt" });
  return record(out, "rsqrt", [x], (g) => [map(x.rt, [g, out], "-0.5 * v0 * v1 * v1 * v1")]);
}

export function relu(x: Tensor): Tensor {
  const out = map(x.rt, [x], "max(v0, 0.0)", { name: "relu" });
  return record(out, "relu", [x], (g) => [map(x.rt, [g, x], "select(0.0, v0, v1 > 0.0)")]);
}

export function tanh(x: Tensor): Tensor {
  const out = map(x.rt, [x], "tanh(v0)", { name: "tanh" });
  return record(out, "tanh", [x], (g) => [map(x.rt, [g, out], "v0 * (1.0 - v1 * v1)")]);
}

// ---- shape ------------------------------------------------------------------------------

/** Broadcasts x to `shape` (a copy); the gradient sums back. */
export function expand(x: Tensor, shape: Shape): Tensor {
  const out = map(x.rt, [x], "v0", { out: x.rt.empty(shape, x.dtype, "expand"), name: "expand" });
  return record(out, "expand", [x], (g) => [sumToShape(g, x.shape)]);
}

export function reshape(x: Tensor, shape: Shape): Tensor {
  const src = contiguous(x.rt, x);
  const out = src.view(shape);
  return record(out, "reshape", [x], (g) => [g.view(x.shape)]);
}

export function permute(x: Tensor, axes: readonly number[]): Tensor {
  const out = map(x.rt, [x.permuteView(axes)], "v0", { name: "permute" });
  const inv = axes.map((_, i) => axes.indexOf(i));
  return record(out, "permute", [x], (g) => [map(x.rt, [g.permuteView(inv)], "v0")]);
}

/** Entries [start, start + len) along axis, as a new contiguous tensor. */
export function narrow(x: Tensor, axis: number, start: number, len: number): Tensor {
  const out = map(x.rt, [narrowView(x, axis, start, len)], "v0", { name: "narrow" });
  return record(out, "narrow", [x], (g) => {
    const dx = map(x.rt, [], "0.0", { out: x.rt.empty(x.shape, g.dtype, "narrow.dx") });
    map(x.rt, [g], "v0", { out: narrowView(dx, axis, start, len) });
    return [dx];
  });
}

export function concat(ts: Tensor[], axis: number): Tensor {
  const out = concatKernel(ts[0].rt, ts, axis);
  const starts: number[] = [];
  let at = 0;
  for (const t of ts) {
    starts.push(at);
    at += t.shape[axis];
  }
  return record(
    out,
    "concat",
    ts,
    (g) =>
      ts.map((t, i) =>
        t.requiresGrad
          ? map(t.rt, [narrowView(g, axis, starts[i], t.shape[axis])], "v0", { name: "concat.dx" })
          : null
      ),
  );
}

// ---- reductions -------------------------------------------------------------------------

export function sum(x: Tensor, axes: readonly number[], keepDims = false): Tensor {
  const out = reduce(x.rt, x, axes, "sum", { keepDims });
  const kd = keptShape(x, axes);
  return record(out, "sum", [x], (g) => [
    map(x.rt, [g.view(kd)], "v0", { out: x.rt.empty(x.shape, g.dtype) }),
  ]);
}

function keptShape(x: Tensor, axes: readonly number[]): number[] {
  const ax = axes.map((a) => (a < 0 ? a + x.rank : a));
  return x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
}

export function mean(x: Tensor, axes: readonly number[], keepDims = false): Tensor {
  const out = reduce(x.rt, x, axes, "mean", { keepDims });
  const kdShape = keptShape(x, axes);
  const n = x.size / out.size;
  return record(out, "mean", [x], (g) => [
    map(x.rt, [g.view(kdShape)], `v0 * ${f32lit(1 / n)}`, { out: x.rt.empty(x.shape, g.dtype) }),
  ]);
}

// ---- linear algebra ---------------------------------------------------------------------

/** Batched matmul: (..., M, K) @ (..., K, N) (or 2-D B shared over the batch). */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  [a, b] = [autocast(a), autocast(b)];
  const rt = a.rt;
  const out = matmulKernel(rt, a, b, { transA, transB });
  return record(out, "matmul", [a, b], (g) => {
    // C = A B: dA = dC B^T, dB = A^T dC (with the transposes folded into flags).
    const da = a.requiresGrad
      ? transA
        ? matmulKernel(rt, b, g, { transA: transB, transB: true })
        : matmulKernel(rt, g, b, { transB: !transB })
      : null;
    let db: Tensor | null = null;
    if (b.requiresGrad) {
      const shared = b.rank === 2 && a.rank > 2;
      const a2 = shared ? a.view([-1, a.shape.at(-1)!]) : a;
      const g2 = shared ? g.view([-1, g.shape.at(-1)!]) : g;
      if (shared && transA) throw new ShapeError("matmul backward", "transA with shared B", a, b);
      db = transB
        ? matmulKernel(rt, g2, a2, { transA: true, transB: transA })
        : matmulKernel(rt, a2, g2, { transA: !transA });
    }
    return [da, db];
  });
}

/**
 * y = act(x W^T + b): x (..., in), W (out, in) as in torch.nn.Linear, b (out).
 * Bias and activation run in the matmul's epilogue.
 */
export function linear(x: Tensor, w: Tensor, b: Tensor | null, act: Activation = "none"): Tensor {
  const rt = x.rt;
  [x, w] = [autocast(x), autocast(w)];
  if (b) b = autocast(b);
  if (w.rank !== 2 || x.shape.at(-1) !== w.shape[1]) {
    throw new ShapeError("linear", `input features must equal W's ${w.shape[1]}`, x, w);
  }
  const x2 = contiguous(rt, x).view([-1, w.shape[1]]);
  const pre = act === "none"
    ? undefined
    : rt.empty([x2.shape[0], w.shape[0]], x.dtype, "linear.pre");
  const y = matmulKernel(rt, x2, w, { transB: true, bias: b ?? undefined, act, preact: pre });
  const out = y.view([...x.shape.slice(0, -1), w.shape[0]]);
  const inputs = b ? [x, w, b] : [x, w];
  return record(out, "linear", inputs, (g) => {
    let gy = g.view([-1, w.shape[0]]);
    if (act === "gelu") gy = map(rt, [gy, pre!], "v0 * gelu_grad_(v1)", { name: "gelu.dx" });
    if (act === "relu") gy = map(rt, [gy, pre!], "select(0.0, v0, v1 > 0.0)", { name: "relu.dx" });
    const dx = x.requiresGrad ? matmulKernel(rt, gy, w).view(x.shape) : null; // (rows, in)
    // Parameters accumulate straight into their .grad (no temporary, no copy).
    let dw: Tensor | null = null, db: Tensor | null = null;
    if (w.requiresGrad) {
      const sink = gradSink(w);
      const r = matmulKernel(rt, gy, x2, {
        transA: true,
        out: sink ?? undefined,
        accumulate: !!sink,
      }); // (out, in)
      dw = sink ? null : r;
    }
    if (b?.requiresGrad) {
      // db = 1^T gy as a matmul: the fast kernel, not a strided column reduction.
      const sink = gradSink(b);
      const ones = onesRow(rt, gy.shape[0], gy.dtype === "f16" ? "f16" : "f32");
      const r = matmulKernel(rt, ones, gy, { out: sink?.view([1, b.size]), accumulate: !!sink });
      db = sink ? null : r.view(b.shape);
    }
    return b ? [dx, dw, db] : [dx, dw];
  });
}

// ---- normalisation, attention, losses --------------------------------------------------

export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  [x, gamma, beta] = [autocast(x), autocast(gamma), autocast(beta)];
  const xc = contiguous(x.rt, x);
  const { y, mean, rstd } = layerNormForward(x.rt, xc, gamma, beta, eps);
  return record(y, "layerNorm", [x, gamma, beta], (g) => {
    const r = layerNormBackward(x.rt, g, xc, gamma, mean, rstd);
    return [r.dx, r.dgamma, r.dbeta];
  });
}

export function softmax(x: Tensor): Tensor {
  const y = softmaxForward(x.rt, contiguous(x.rt, x));
  return record(y, "softmax", [x], (g) => [softmaxBackward(x.rt, g, y)]);
}

/** Which attention kernels (kernels/attention/mod.ts); default: the runtime's setting. */
export type { AttentionImpl };

export interface AttentionOptions {
  /** Additive, (Lq, Lk) or (B, Lq, Lk). */
  mask?: Tensor;
  /** Default 1 / sqrt(D). */
  scale?: number;
  impl?: AttentionImpl;
}

/** Multi-head attention core: q, k, v (B, L, H, D) views -> (B, Lq, H, D). */
export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionOptions = {},
): Tensor {
  [q, k, v] = [autocast(q), autocast(k), autocast(v)];
  const variant = chooseVariant(q, k, v, opts);
  if (variant === "dense") {
    const { out, saved } = denseAttentionForward(q.rt, q, k, v, opts);
    return record(out, "attention", [q, k, v], (g) => {
      const r = denseAttentionBackward(q.rt, g, saved);
      return [r.dq, r.dk, r.dv];
    });
  }
  const fused = { ...opts, variant };
  const { out, lse } = attentionForward(q.rt, q, k, v, fused);
  return record(out, "attention", [q, k, v], (g) => {
    const r = attentionBackward(q.rt, g, q, k, v, out, lse, fused);
    return [r.dq, r.dk, r.dv];
  });
}

/** Inverted dropout; identity when p = 0. `salt` distinguishes call sites. */
export function dropout(x: Tensor, p: number, seed: Tensor, salt: number): Tensor {
  if (p <= 0) return x;
  const xc = contiguous(x.rt, x);
  const y = dropoutKernel(x.rt, xc, p, seed, salt);
  return record(y, "dropout", [x], (g) => [dropoutKernel(x.rt, g, p, seed, salt)]);
}

/** Mean cross-entropy with label smoothing over a batch: logits (B, K), labels i32 (B) -> [1]. */
export function crossEntropy(logits: Tensor, labels: Tensor, smoothing = 0): Tensor {
  const rt = logits.rt;
  logits = cast(logits, "f32"); // the loss in f32 under mixed precision
  const lc = contiguous(rt, logits);
  const { loss, lse } = crossEntropyForward(rt, lc, labels, smoothing);
  const meanLoss = reduce(rt, loss, [0], "mean", { keepDims: true }); // [1]
  const b = logits.shape[0];
  return record(meanLoss, "crossEntropy", [logits], (g) => {
    const dl = map(rt, [g], `v0 * ${f32lit(1 / b)}`, { out: rt.empty([b], "f32") });
    return [crossEntropyBackward(rt, dl, lc, labels, lse, smoothing)];
  });
}

/** Tubelet patches: (N, C, T, H, W) -> (N, tokens, C*kt*kh*kw); see kernels/tubelet.ts. */
export function patchify(x: Tensor, k: Tubelet): Tensor {
  x = autocast(x);
  const xc = contiguous(x.rt, x);
  const out = patchifyKernel(x.rt, xc, k);
  return record(out, "patchify", [x], (g) => [unpatchify(x.rt, g, x.shape, k)]);
}

/**
 * Attention straight from a packed projection qkv (B, L, 3, H, D): q, k, v are strided views
 * (no copies); the backward writes dq, dk, dv into one packed gradient.
 */
export function attentionPacked(qkv: Tensor, opts: AttentionOptions = {}): Tensor {
  const rt = qkv.rt;
  qkv = autocast(qkv);
  if (qkv.rank !== 5 || qkv.shape[2] !== 3) {
    throw new ShapeError("attentionPacked", "qkv must be (B, L, 3, H, D)", qkv);
  }
  const src = contiguous(rt, qkv);
  const [b, l, , h, d] = src.shape;
  const [q, k, v] = [packedPart(src, 0), packedPart(src, 1), packedPart(src, 2)];
  const variant = chooseVariant(q, k, v, opts);
  if (variant === "dense") {
    const { out, saved } = denseAttentionForward(rt, q, k, v, opts);
    return record(out, "attention", [qkv], (g) => {
      // dq, dk, dv land straight in their parts of the packed gradient.
      const dqkv = rt.empty(src.shape, g.dtype, "attention.dqkv");
      denseAttentionBackward(rt, g, saved, {
        dq: packedPart(dqkv, 0),
        dk: packedPart(dqkv, 1),
        dv: packedPart(dqkv, 2),
      });
      return [dqkv];
    });
  }
  const fused = { ...opts, variant };
  const { out, lse } = attentionForward(rt, q, k, v, fused);
  return record(out, "attention", [qkv], (g) => {
    const r = attentionBackward(rt, g, q, k, v, out, lse, fused);
    const dqkv = rt.empty(src.shape, g.dtype, "attention.dqkv");
    [r.dq, r.dk, r.dv].forEach((d5, i) =>
      map(rt, [d5.view([b, l, 1, h, d])], "v0", {
        out: narrowView(dqkv, 2, i, 1),
        name: "attention.pack",
      })
    );
    return [dqkv];
  });
}
