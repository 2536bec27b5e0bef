// Timing GPU work honestly: warm up (pipeline compile), then record `reps` runs into one
// command buffer, wait once, and divide. The one host sync (~12 ms on llvmpipe) must be small
// against the total, so the repetition count grows (x4) until the total reaches `minMs`:
// sizing it from one synced run would let the sync dominate for sub-millisecond kernels.
// No small cap on the count: on an H100 a 256^3 product takes microseconds.
import type { Runtime } from "./runtime.ts";

/** Milliseconds per run of `record` (and the repetitions it took). */
export async function timeGpu(
  rt: Runtime,
  record: () => void,
  opts: { minMs?: number; maxReps?: number } = {},
): Promise<{ ms: number; reps: number }> {
  const minMs = opts.minMs ?? 300, maxReps = opts.maxReps ?? 100_000;
  record();
  await rt.sync();
  for (let reps = 1;; reps = Math.min(maxReps, reps * 4)) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) record();
    await rt.sync();
    const total = performance.now() - t0;
    if (total >= minMs || reps >= maxReps) return { ms: total / reps, reps };
  }
}
