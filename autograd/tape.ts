// Reverse-mode autograd. Ops attach a TapeNode to their output when an input needs a
// gradient; backward() walks the graph from the loss in reverse topological order, asks each
// node for its input gradients and accumulates them. Leaves (parameters) accumulate into
// their persistent .grad buffers, so gradient accumulation over micro-batches is free.
import { map } from "../kernels/map.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { shapeStr } from "../runtime/tensor.ts";

let enabled = true;

/** Runs fn without recording gradients (evaluation). */
export function noGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

export function gradEnabled(): boolean {
  return enabled;
}

/**
 * For a parameter (a leaf with its own persistent .grad): the buffer a gradient rule may
 * accumulate into directly (as llm.c does), saving a temporary and a copy. The rule then
 * returns null for that input. Null when `t` is not such a leaf.
 */
export function gradSink(t: Tensor): Tensor | null {
  return t.requiresGrad && !t.node && t.grad && t.grad.storage.persistent ? t.grad : null;
}

/** Marks `out` as produced by op from inputs, with its gradient rule. Returns out. */
export function record(
  out: Tensor,
  op: string,
  inputs: readonly Tensor[],
  backward: (dOut: Tensor) => (Tensor | null)[],
): Tensor {
  if (enabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep models would overflow the stack recursively.
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    if (i === 0) {
      if (seen.has(t)) {
        stack.pop();
        continue;
      }
      seen.add(t);
    }
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      if (inputs[i].requiresGrad && !seen.has(inputs[i])) stack.push([inputs[i], 0]);
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

/** Backpropagates from `root` (seeded with dRoot, default ones) into every leaf's .grad. */
export function backward(root: Tensor, dRoot?: Tensor): void {
  const rt = root.rt;
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require a gradient`);
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, dRoot ?? map(rt, [], "1.0", { out: rt.empty(root.shape, "f32", "dRoot") }));
  const order = topoOrder(root);
  for (let n = order.length - 1; n >= 0; n--) {
    const t = order[n];
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    if (!t.node) {
      accumulateLeaf(t, g);
      continue;
    }
    const ins = t.node.backward(g);
    t.node.inputs.forEach((x, i) => {
      const gi = ins[i];
      if (!gi || !x.requiresGrad) return;
      if (gi.size !== x.size) {
        throw new Error(
          `backward of ${t.node!.op}: gradient ${shapeStr(gi.shape)} for input ${
            shapeStr(x.shape)
          }`,
        );
      }
      const prev = grads.get(x);
      // A gradient has its tensor's dtype: under mixed precision an op may mix f16 and f32
      // inputs, and each input's gradient is converted (once, or while summing) to its own.
      const dt = x.dtype;
      grads.set(
        x,
        prev
          ? map(rt, [prev, gi.view(prev.shape)], "v0 + v1", { name: "grad.add", dtype: dt })
          : gi.dtype === dt || x.node === null
          ? gi
          : map(rt, [gi], "v0", { name: "grad.cast", dtype: dt }),
      );
    });
  }
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf.grad) {
    map(leaf.rt, [g.view(leaf.grad.shape)], "v0", {
      out: leaf.grad,
      accumulate: true,
      name: "grad.acc",
    });
  } else {
    leaf.grad = g.view(leaf.shape);
  }
}
