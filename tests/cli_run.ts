// Runs the CLI as a user does (`deno run -A main.ts ...`) and measures what bad input costs:
// wall time and the child's peak resident memory (VmHWM, polled from /proc while it runs).
import { fileURLToPath } from "node:url";

export const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

export interface CliResult {
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** Peak resident memory in MiB (0 where /proc is unavailable). */
  peakMiB: number;
  timedOut: boolean;
}

async function peakOf(pid: number): Promise<number> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/status`);
    return Number(s.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? 0) / 1024;
  } catch {
    return 0; // gone, or no /proc
  }
}

/** Runs main.ts with `args`, killed after `timeoutMs`; `onStart` may signal it. */
export async function runCli(
  args: string[],
  o: { timeoutMs?: number; cwd?: string; onStart?: (p: Deno.ChildProcess) => void } = {},
): Promise<CliResult> {
  const t0 = performance.now();
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: o.cwd,
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
  }).spawn();
  let timedOut = false, peakMiB = 0, done = false;
  const timer = setTimeout(() => {
    timedOut = true;
    p.kill("SIGKILL");
  }, o.timeoutMs ?? 60_000);
  const poll = (async () => {
    while (!done) {
      peakMiB = Math.max(peakMiB, await peakOf(p.pid));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  o.onStart?.(p);
  const out = await p.output();
  done = true;
  clearTimeout(timer);
  await poll;
  const dec = new TextDecoder();
  return {
    code: out.code,
    signal: out.signal,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    seconds: (performance.now() - t0) / 1000,
    peakMiB,
    timedOut,
  };
}
