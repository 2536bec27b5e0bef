// `heatformer demo`: a small end-to-end run of the runtime (2-layer transformer, AdamW,
// one command buffer per step, loss read back once per epoch) on a procedural sequence
// task whose class is the frequency of a motion: it must learn something over time.
import * as ops from "../autograd/ops.ts";
import { backward, noGrad } from "../autograd/tape.ts";
import { Block, LayerNorm, Linear } from "../layers/basic.ts";
import { Rng } from "../layers/init.ts";
import { Module } from "../layers/module.ts";
import { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { DEFAULT_OPTIMIZER, Optimizer } from "../training/optimizer.ts";
import { positiveInt, printJson } from "./output.ts";

const [T, F, CLASSES] = [16, 8, 6];

function sample(rng: Rng): { x: Float32Array; y: number } {
  const y = rng.int(CLASSES);
  const freq = 0.25 + 0.22 * y, phase = rng.uniform() * 6.28;
  const x = new Float32Array(T * F);
  for (let t = 0; t < T; t++) {
    for (let f = 0; f < F; f++) {
      x[t * F + f] = Math.sin(freq * t + phase + f * 0.3) * (0.5 + 0.1 * f) + rng.normal() * 0.3;
    }
  }
  return { x, y };
}

class TinyTransformer extends Module {
  readonly embed: Linear;
  readonly blocks: Block[];
  readonly norm: LayerNorm;
  readonly head: Linear;
  constructor(rt: Runtime, width: number, rng: Rng) {
    super(rt);
    const ctx = { seed: null, sites: 0 };
    this.embed = this.child("embed", new Linear(rt, F, width, rng.fork(1)));
    this.blocks = [0, 1].map((i) =>
      this.child(`blocks.${i}`, new Block(rt, width, 4, rng.fork(10 + i), ctx))
    );
    this.norm = this.child("norm", new LayerNorm(rt, width, rng.fork(2)));
    this.head = this.child("head", new Linear(rt, width, CLASSES, rng.fork(3), { std: 0.02 }));
  }
  /** x (B, T, F) -> logits (B, classes): tokens per frame, mean pooled. */
  forward(x: Tensor): Tensor {
    let h = this.embed.forward(x);
    for (const b of this.blocks) h = b.forward(h);
    return this.head.forward(ops.mean(this.norm.forward(h), [1]));
  }
}

export async function demoCommand(o: { epochs: string; json?: boolean }): Promise<void> {
  const epochs = positiveInt("--epochs", o.epochs);
  const rt = await Runtime.create();
  const rng = new Rng(1);
  const train = Array.from({ length: 512 }, () => sample(rng));
  const test = Array.from({ length: 256 }, () => sample(rng));
  const model = new TinyTransformer(rt, 64, new Rng(2));
  const opt = new Optimizer(rt, model.namedParams(), { ...DEFAULT_OPTIMIZER, weightDecay: 0.01 });
  const batch = 32, steps = train.length / batch;
  const lossSum = rt.persistent([1], "f32", "lossSum");
  const log = (s: string) => !o.json && console.log(s);
  log(`demo: ${model.parameterCount()} parameters on ${rt.gpu.description.name}`);
  const upload = (xs: { x: Float32Array; y: number }[]) => {
    const x = new Float32Array(xs.length * T * F);
    xs.forEach((s, i) => x.set(s.x, i * T * F));
    return {
      x: rt.tensor(x, [xs.length, T, F]),
      y: rt.tensor(xs.map((s) => s.y), [xs.length], "i32"),
    };
  };
  const t0 = performance.now();
  let lastLoss = NaN;
  for (let epoch = 0; epoch < epochs; epoch++) {
    rt.write(lossSum, [0]);
    for (let s = 0; s < steps; s++) {
      const lr = 2e-3 * Math.min(1, (epoch * steps + s + 1) / 20);
      opt.beginStep(lr);
      rt.tidy(() => {
        const { x, y } = upload(train.slice(s * batch, (s + 1) * batch));
        const loss = ops.crossEntropy(model.forward(x), y);
        backward(loss);
      });
      opt.step();
      rt.flush();
    }
    lastLoss = await evalLoss(rt, model, train.slice(0, 128), upload);
    log(`epoch ${epoch + 1}/${epochs}: train loss ${lastLoss.toFixed(3)}`);
  }
  const acc = await accuracy(rt, model, test, upload);
  const seconds = (performance.now() - t0) / 1000;
  const summary = {
    task: "demo",
    epochs,
    trainLoss: lastLoss,
    testAccuracy: acc,
    seconds,
  };
  if (o.json) printJson(summary);
  else console.log(`test accuracy ${(acc * 100).toFixed(1)}% in ${seconds.toFixed(1)} s`);
}

type Upload = (xs: { x: Float32Array; y: number }[]) => { x: Tensor; y: Tensor };

async function evalLoss(
  rt: Runtime,
  m: TinyTransformer,
  xs: { x: Float32Array; y: number }[],
  up: Upload,
) {
  const l = rt.tidy(() => noGrad(() => ops.crossEntropy(m.forward(up(xs).x), up(xs).y)));
  const v = (await rt.read(l))[0];
  rt.dispose(l);
  return v;
}

async function accuracy(
  rt: Runtime,
  m: TinyTransformer,
  xs: { x: Float32Array; y: number }[],
  up: Upload,
) {
  const logits = rt.tidy(() => noGrad(() => m.forward(up(xs).x)));
  const v = await rt.read(logits);
  rt.dispose(logits);
  let hit = 0;
  xs.forEach((s, i) => {
    const row = v.slice(i * CLASSES, (i + 1) * CLASSES);
    if (row.indexOf(Math.max(...row)) === s.y) hit++;
  });
  return hit / xs.length;
}
