// The peer a TypeScript user would pick: TensorFlow.js with its WebGPU backend, on the same
// adapter, in bench/peers/main.ts's process (bench/peer.ts), so heatformer never depends on it.
import type { Tensor } from "@tensorflow/tfjs-core";
import type { PeerResult } from "../peer.ts";

export async function tfjsMatmul(sizes: number[], minMs = 300): Promise<PeerResult[]> {
  const tf = await import("@tensorflow/tfjs-core");
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) throw new Error("TensorFlow.js: no WebGPU backend");
  await tf.ready();
  const out: PeerResult[] = [];
  for (const n of sizes) {
    const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
    // Wait by reading back one element of the last product (as heatformer's sync does), not
    // the whole matrix: a 4096^2 readback would be timed as if it were matmul.
    const waitFor = async (c: Tensor) => {
      const one = tf.slice(c, [0, 0], [1, 1]);
      await one.data();
      one.dispose();
      c.dispose();
    };
    await waitFor(tf.matMul(a, b)); // compile + warm up
    // As bench/timing.ts: repetitions grow x4 until one wait is small against the total.
    let ms = 0;
    for (let reps = 1;; reps *= 4) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) {
        const c = tf.matMul(a, b);
        if (i < reps - 1) c.dispose();
        else await waitFor(c);
      }
      const total = performance.now() - t0;
      ms = total / reps;
      if (total >= minMs || reps >= 100_000) break;
    }
    out.push({
      name: "tfjs-webgpu",
      kernel: "matmul",
      shape: [n, n, n],
      gflops: 2 * n ** 3 / ms / 1e6,
      ms,
    });
    a.dispose();
    b.dispose();
  }
  return out;
}
