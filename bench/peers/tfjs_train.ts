// The reference training step (2-layer pre-norm encoder, batch 8, sequence 64, width 128,
// 4 heads, MLP 512, Adam) written with TensorFlow.js core ops on its WebGPU backend: the
// peer a TypeScript user would otherwise pick, timed the same way as heatformer's step.
import type { Scalar } from "@tensorflow/tfjs-core";
import type { PeerTime } from "../peer.ts";
import { medianMs } from "../timing.ts";

export async function tfjsReferenceStep(): Promise<PeerTime> {
  const tf = await import("@tensorflow/tfjs-core");
  await import("@tensorflow/tfjs"); // registers the gradient functions (core alone has none)
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) throw new Error("TensorFlow.js: no WebGPU backend");
  await tf.ready();
  const [B, L, C, H, F] = [8, 64, 128, 4, 512];
  const v = (shape: number[], std: number) => tf.variable(tf.randomNormal(shape, 0, std));
  const layers = [0, 1].map(() => ({
    g1: tf.variable(tf.ones([C])),
    b1: tf.variable(tf.zeros([C])),
    wqkv: v([C, 3 * C], 0.02),
    bqkv: tf.variable(tf.zeros([3 * C])),
    wo: v([C, C], 0.02),
    bo: tf.variable(tf.zeros([C])),
    g2: tf.variable(tf.ones([C])),
    b2: tf.variable(tf.zeros([C])),
    w1: v([C, F], 0.02),
    c1: tf.variable(tf.zeros([F])),
    w2: v([F, C], 0.02),
    c2: tf.variable(tf.zeros([C])),
  }));
  const x = tf.randomNormal([B * L, C]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: B * L }, (_, i) => i % C), "int32"), C);
  const ln = (h: typeof x, g: typeof x, b: typeof x) => {
    const { mean, variance } = tf.moments(h, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-6))), g), b);
  };
  const gelu = (h: typeof x) =>
    tf.mul(
      tf.mul(h, 0.5),
      tf.add(1, tf.tanh(tf.mul(tf.add(h, tf.mul(tf.pow(h, 3), 0.044715)), Math.sqrt(2 / Math.PI)))),
    );
  const loss = () => {
    let h = x;
    for (const p of layers) {
      const qkv = tf.reshape(tf.add(tf.matMul(ln(h, p.g1, p.b1), p.wqkv), p.bqkv), [
        B,
        L,
        3,
        H,
        C / H,
      ]);
      const part = (i: number) =>
        tf.transpose(
          tf.reshape(tf.slice(qkv, [0, 0, i, 0, 0], [B, L, 1, H, C / H]), [B, L, H, C / H]),
          [0, 2, 1, 3],
        );
      const att = tf.softmax(
        tf.mul(tf.matMul(part(0), part(1), false, true), 1 / Math.sqrt(C / H)),
      );
      const o = tf.reshape(tf.transpose(tf.matMul(att, part(2)), [0, 2, 1, 3]), [B * L, C]);
      h = tf.add(h, tf.add(tf.matMul(o, p.wo), p.bo));
      h = tf.add(
        h,
        tf.add(tf.matMul(gelu(tf.add(tf.matMul(ln(h, p.g2, p.b2), p.w1), p.c1)), p.w2), p.c2),
      );
    }
    return tf.losses.softmaxCrossEntropy(labels, h) as Scalar;
  };
  const opt = tf.train.adam(1e-3);
  const step = async () => {
    const l = opt.minimize(loss, true)!;
    await l.data(); // the step is done when its loss can be read
    l.dispose();
  };
  return { name: "tfjs-webgpu", msPerStep: await medianMs(step) };
}
