// `sweep run --local N`: the sweep's unfinished runs, N at a time on this machine, each in its
// own process (`heatformer sweep task`), so a failing run never stops the others. The queue is
// the sweep folder: Ctrl-C stops the workers (each saves its run) and `sweep resume` or a
// second `sweep run` continues, skipping finished runs and resuming interrupted ones.
import { heatformerCommand } from "./command.ts";
import type { SweepRecord } from "./folder.ts";
import { runStates } from "./status.ts";

export interface LocalResult {
  ran: string[];
  failed: string[];
  interrupted: boolean;
}

/** Runs the record's unfinished runs, `parallel` at a time; `log` gets one line per event. */
export async function runLocal(
  dir: string,
  record: SweepRecord,
  parallel: number,
  log: (line: string) => void,
): Promise<LocalResult> {
  const states = await runStates(dir, record);
  const queue = record.runs.filter((r) => states.get(r.name)?.state !== "done");
  for (const r of record.runs) {
    if (states.get(r.name)?.state === "done") log(`${r.name}: done already`);
  }
  const result: LocalResult = { ran: [], failed: [], interrupted: false };
  const running = new Set<Deno.ChildProcess>();
  let stopping = false;
  const onInt = () => {
    if (stopping) return;
    stopping = true;
    result.interrupted = true;
    log("stopping: each running run saves and exits; continue with `heatformer sweep resume`");
    for (const p of running) p.kill("SIGTERM");
  };
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onInt);
  const [exe, ...pre] = heatformerCommand();
  const worker = async () => {
    while (!stopping && queue.length) {
      const run = queue.shift()!;
      log(`${run.name}: started`);
      const p = new Deno.Command(exe, {
        args: [...pre, "sweep", "task", dir, String(run.index)],
        stdout: "null",
        stderr: "inherit",
      }).spawn();
      running.add(p);
      const { code } = await p.status;
      running.delete(p);
      result.ran.push(run.name);
      if (code !== 0 && !stopping) result.failed.push(run.name);
      log(`${run.name}: ${code === 0 ? "done" : stopping ? "stopped" : `failed (exit ${code})`}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onInt);
  }
  return result;
}
