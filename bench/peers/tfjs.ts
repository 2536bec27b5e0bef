// The peer a TypeScript user would pick: TensorFlow.js with its WebGPU backend, on the same
// adapter, in the same process. Loaded lazily so heatformer itself never depends on it.
export interface PeerResult {
  name: string;
  kernel: string;
  shape: number[];
  gflops: number;
  ms: number;
}

export async function tfjsMatmul(sizes: number[], minMs = 300): Promise<PeerResult[]> {
  const tf = await import("@tensorflow/tfjs-core");
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) throw new Error("TensorFlow.js: no WebGPU backend");
  await tf.ready();
  const out: PeerResult[] = [];
  for (const n of sizes) {
    const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
    let c = tf.matMul(a, b);
    await c.data(); // compile + warm up
    c.dispose();
    let t0 = performance.now();
    c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    const once = performance.now() - t0;
    const reps = Math.max(1, Math.min(50, Math.ceil(minMs / once)));
    t0 = performance.now();
    for (let i = 0; i < reps; i++) {
      c = tf.matMul(a, b);
      if (i < reps - 1) c.dispose();
    }
    await c.data();
    c.dispose();
    const ms = (performance.now() - t0) / reps;
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
