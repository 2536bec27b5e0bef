// Timing for benchmarks: GPU work (runtime/timing.ts, which the autotuner shares) and awaited
// host-side steps.
export { timeGpu } from "../runtime/timing.ts";

/** Median wall time of `reps` awaited runs of `step`, after `warmup` untimed ones. */
export async function medianMs(
  step: () => Promise<void>,
  o: { warmup?: number; reps?: number } = {},
): Promise<number> {
  for (let i = 0; i < (o.warmup ?? 2); i++) await step();
  const times: number[] = [];
  for (let i = 0; i < (o.reps ?? 5); i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}
