// Captured step graphs (runtime/graph.ts): a replayed training step gives exactly the weights
// of eager steps, keeps its buffers out of the pool, and refuses what it cannot replay.
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import { Block } from "../layers/basic.ts";
import { Rng } from "../layers/init.ts";
import { Module } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { DEFAULT_OPTIMIZER, Optimizer } from "../training/optimizer.ts";
import { assert, assertEquals } from "./assert.ts";
import { gpuTest, randn, readF32 } from "./helpers.ts";

class TwoBlocks extends Module {
  readonly blocks: Block[];
  constructor(rt: Runtime) {
    super(rt);
    const rng = new Rng(7), ctx = { seed: null, sites: 0 };
    this.blocks = [0, 1].map((i) => this.child(`${i}`, new Block(rt, 16, 2, rng.fork(i), ctx)));
  }
  forward(x: Tensor): Tensor {
    for (const b of this.blocks) x = b.forward(x);
    return x;
  }
}

/** A model, its optimiser, fixed inputs, and the step body. */
function setup(rt: Runtime) {
  const model = new TwoBlocks(rt);
  const opt = new Optimizer(rt, model.namedParams(), DEFAULT_OPTIMIZER);
  const x = rt.tensor(randn(3 * 5 * 16, 1), [3, 5, 16], "f32", { persistent: true });
  const y = rt.persistent([15], "i32", "labels");
  const body = () => {
    rt.tidy(() => backward(ops.crossEntropy(model.forward(x).view([15, 16]), y), opt.lossSeed()));
    opt.step();
  };
  return { model, opt, x, y, body };
}

gpuTest("graph: replayed steps give bit-identical weights to eager steps", async (rt) => {
  const eager = setup(rt), graphed = setup(rt);
  const labels = (s: number) => Array.from({ length: 15 }, (_, i) => (i * 7 + s) % 16);
  let graph = null;
  for (let s = 0; s < 4; s++) {
    // Per-step inputs change between steps: the learning rate and the labels.
    for (const r of [eager, graphed]) {
      r.opt.beginStep(1e-2 * (s + 1));
      rt.write(r.y, labels(s));
    }
    eager.body();
    if (!graph) graph = rt.capture(graphed.body).graph;
    else rt.replay(graph);
    rt.flush();
  }
  assertEquals(graphed.opt.t, 4, "the optimiser's step count advances on replay");
  assert(graph!.dispatches > 20, `the graph holds the step's dispatches (${graph!.dispatches})`);
  const a = eager.model.namedParams(), b = graphed.model.namedParams();
  let checked = 0;
  for (const [name, p] of a) {
    const [va, vb] = [await readF32(rt, p.tensor), await readF32(rt, b.get(name)!.tensor)];
    const diff = va.findIndex((v, i) => v !== vb[i]);
    assert(diff < 0, `${name}[${diff}]: eager ${va[diff]} vs replayed ${vb[diff]}`);
    checked++;
  }
  assert(checked > 10, "all parameters compared");
  graph!.dispose();
});

gpuTest("graph: its buffers stay out of the pool until it is disposed", async (rt) => {
  const { graph } = rt.capture(() =>
    rt.tidy(() => {
      const a = rt.tensor(randn(64, 2), [64]); // a constant of the graph
      return void ops.scale(a, 2);
    })
  );
  const ids = new Set(graph.buffers.map((b) => b.id));
  const taken = rt.tidy(() =>
    Array.from({ length: 8 }, () => rt.empty([64]).storage.buf.id).filter((id) => ids.has(id))
  );
  assertEquals(taken.length, 0, "no allocation receives a pinned buffer");
  graph.dispose();
  const back = rt.tidy(() =>
    Array.from({ length: 8 }, () => rt.empty([64]).storage.buf.id).filter((id) => ids.has(id))
  );
  assert(back.length > 0, "after dispose() the buffers circulate again");
  await rt.sync();
});

gpuTest(
  "graph: constants uploaded inside are re-copied; outside tensors refuse writes",
  async (rt) => {
    const out = rt.persistent([4], "f32", "out");
    const outside = rt.persistent([4], "f32", "outside");
    const { graph } = rt.capture(() =>
      rt.tidy(() => {
        const c = rt.tensor([1, 2, 3, 4], [4]);
        ops.scale(c, 10); // a temporary, so c's buffer may be reused
        const r = ops.scale(c, 1);
        rt.copy(r, out);
      })
    );
    rt.write(out, [0, 0, 0, 0]);
    rt.replay(graph);
    assertEquals([...await readF32(rt, out)], [1, 2, 3, 4], "replay re-copies the constant");
    let msg = "";
    try {
      rt.capture(() => rt.write(outside, [1, 2, 3, 4]));
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(/inside capture\(\).*per-step inputs/.test(msg), `write refused: "${msg}"`);
    // A capture that throws after uploading a constant: the commands recorded so far still run,
    // so the constant must outlive them (destroying it at once is a validation error at sync).
    let boom = "";
    try {
      rt.capture(() =>
        rt.tidy(() => {
          ops.scale(rt.tensor([5, 6, 7, 8], [4]), 2);
          throw new Error("boom");
        })
      );
    } catch (e) {
      boom = (e as Error).message;
    }
    assertEquals(boom, "boom");
    await rt.sync();
    graph.dispose();
    let replayed = "";
    try {
      rt.replay(graph);
    } catch (e) {
      replayed = (e as Error).message;
    }
    assert(/disposed/.test(replayed), `replay of a disposed graph refused: "${replayed}"`);
  },
);
