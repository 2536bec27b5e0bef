// `sweep status`: each run queued / running / done / failed (with its error line) / preempted
// (stopped by a signal, waiting to resume), from the sweep folder, and for Slurm from squeue.
// A run that finished after being stopped says how often it was resumed.
import { join } from "node:path";
import { runFinished } from "../cli/train.ts";
import { lockHolder } from "../training/run_lock.ts";
import {
  type Attempt,
  readAttempts,
  startedExperiment,
  sweepPaths,
  type SweepRecord,
} from "./folder.ts";

export type RunState = "queued" | "running" | "done" | "failed" | "preempted";

export interface RunStatus {
  name: string;
  state: RunState;
  /** Epochs done of the run's epochs (from its metrics). */
  epochs: [number, number] | null;
  /** Attempts stopped by a signal and resumed. */
  resumed: number;
  attempts: number;
  error?: string;
  /** Slurm's view of the task, where known ("PENDING", "RUNNING", ...). */
  slurm?: string;
}

async function epochsOf(dir: string, total: number): Promise<[number, number]> {
  const text = await Deno.readTextFile(join(dir, "metrics.jsonl")).catch(() => "");
  return [text.split("\n").filter((l) => l.trim().endsWith("}")).length, total];
}

function stateOf(finished: boolean, live: boolean, last: Attempt | undefined): RunState {
  if (finished) return "done";
  if (live || (last && last.status === undefined && !last.end)) {
    return live ? "running" : "preempted";
  }
  if (!last) return "queued";
  if (last.signal || (last.status ?? 0) > 128) return "preempted";
  return "failed";
}

export async function runStates(
  dir: string,
  record: SweepRecord,
  slurm: Map<string, string> = new Map(),
): Promise<Map<string, RunStatus>> {
  const out = new Map<string, RunStatus>();
  for (const run of record.runs) {
    const folder = sweepPaths(dir).run(run.name);
    const attempts = await readAttempts(dir, run.name);
    const e = await startedExperiment(dir, run.name);
    const finished = e ? await runFinished(folder, e.run.epochs) : false;
    const last = attempts.at(-1);
    let state = stateOf(finished, (await lockHolder(folder)) !== null, last);
    const sq = slurm.get(String(run.index));
    if (sq && !finished && (sq === "PENDING" || sq === "REQUEUED")) {
      state = last ? "preempted" : "queued";
    }
    if (sq === "RUNNING" && !finished) state = "running";
    out.set(run.name, {
      name: run.name,
      state,
      epochs: e ? await epochsOf(folder, e.run.epochs) : null,
      resumed: attempts.filter((a) => a.signal || (a.status ?? 0) > 128).length,
      attempts: attempts.length,
      ...(state === "failed" && last?.error ? { error: last.error } : {}),
      ...(sq ? { slurm: sq } : {}),
    });
  }
  return out;
}
