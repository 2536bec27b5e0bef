// Failpoints for crash tests: HEATFORMER_FAILPOINT="NAME:N" kills this process (SIGKILL, as a
// power cut or `kill -9` would) at the N-th time it passes the point NAME. Unset, a failpoint
// costs one comparison. The points: "step" (after an optimiser step), "metrics" (after an
// epoch's metrics line, before its checkpoints), "checkpoint-written" (a checkpoint's
// temporary file written, before any rename), "checkpoint-rotated" (last moved to last-1,
// the new last not yet in place).
const spec = (() => {
  try {
    const v = Deno.env.get("HEATFORMER_FAILPOINT");
    const m = v?.match(/^([a-z-]+):(\d+)$/);
    return m ? { name: m[1], at: Number(m[2]) } : null;
  } catch {
    return null; // no --allow-env: no failpoints
  }
})();
let hits = 0;

export function failpoint(name: string): void {
  if (spec?.name === name && ++hits === spec.at) Deno.kill(Deno.pid, "SIGKILL");
}
