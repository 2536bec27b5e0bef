// Timing GPU work honestly: warm up (pipeline compile), then record `reps` runs into one
// command buffer, wait once, and divide. The one host sync (~12 ms on llvmpipe) is spread
// over enough reps that the total is at least `minMs`.
import type { Runtime } from "../runtime/runtime.ts";

export async function timeGpu(
  rt: Runtime,
  record: () => void,
  opts: { minMs?: number; maxReps?: number } = {},
): Promise<{ ms: number; reps: number }> {
  const minMs = opts.minMs ?? 300;
  record();
  await rt.sync();
  // One timed run to size the repetition count.
  let t0 = performance.now();
  record();
  await rt.sync();
  const once = Math.max(0.05, performance.now() - t0);
  const reps = Math.max(1, Math.min(opts.maxReps ?? 50, Math.ceil(minMs / once)));
  t0 = performance.now();
  for (let i = 0; i < reps; i++) record();
  await rt.sync();
  return { ms: (performance.now() - t0) / reps, reps };
}
