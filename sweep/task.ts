// One task of a sweep: the run at INDEX, trained in this process (`heatformer sweep task DIR
// INDEX`, what each Slurm array task and each local worker runs). A finished run is left as it
// is; a started one resumes (bit-exact); a new one trains from its resolved config. Every
// attempt is recorded. Stopped by SIGTERM (preemption, scancel) or SIGUSR1 (the time-limit
// warning), the run saves and exits; on the warning, a Slurm task also requeues itself, and
// the requeued task resumes the run where it stopped.
import { hostname } from "node:os";
import { runFinished, runTraining, type TrainOutcome } from "../cli/train.ts";
import { located } from "../io/errors.ts";
import { ConfigError } from "../training/experiment.ts";
import {
  type Attempt,
  readAttempts,
  readSweepRecord,
  saveAttempts,
  startedExperiment,
  sweepPaths,
} from "./folder.ts";

/** This task's Slurm job ("ARRAYJOB_TASK", or the job id), when it runs under Slurm. */
export function slurmJob(): string | undefined {
  const env = (k: string) => Deno.env.get(k);
  if (env("SLURM_ARRAY_JOB_ID") && env("SLURM_ARRAY_TASK_ID")) {
    return `${env("SLURM_ARRAY_JOB_ID")}_${env("SLURM_ARRAY_TASK_ID")}`;
  }
  return env("SLURM_JOB_ID");
}

async function requeue(job: string): Promise<void> {
  const out = await new Deno.Command("scontrol", { args: ["requeue", job] }).output()
    .catch((e) => ({ success: false, stderr: new TextEncoder().encode(String(e)) }));
  if (!out.success) {
    console.error(`scontrol requeue ${job} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** Trains the run at `index` of the sweep in `dir`; returns the exit status. */
export async function runTask(dir: string, index: number): Promise<number> {
  const record = await readSweepRecord(dir);
  const run = record.runs[index];
  if (!run) {
    throw new ConfigError(`${dir}: no run ${index} (the sweep has ${record.runs.length})`);
  }
  const p = sweepPaths(dir);
  const attempts = await readAttempts(dir, run.name);
  const attempt: Attempt = {
    start: new Date().toISOString(),
    host: hostname(),
    pid: Deno.pid,
    job: slurmJob(),
  };
  await saveAttempts(dir, run.name, [...attempts, attempt]);
  const done = async (status: number, extra: Partial<Attempt> = {}) => {
    Object.assign(attempt, { end: new Date().toISOString(), status, ...extra });
    await saveAttempts(dir, run.name, [...attempts, attempt]);
    return status;
  };
  let outcome: TrainOutcome;
  try {
    const started = await startedExperiment(dir, run.name);
    if (started && (await runFinished(p.run(run.name), started.run.epochs))) return done(0);
    outcome = await runTraining(
      started ? { resume: p.run(run.name) } : { config: [p.config(run.name)] },
    );
  } catch (e) {
    const status = e instanceof ConfigError ? 2 : 1;
    await done(status, { error: (e as Error).message.split("\n")[0] });
    throw located(e as Error, p.run(run.name), run.name);
  }
  await done(outcome.status, { signal: outcome.signal });
  const job = slurmJob();
  if (outcome.signal === "SIGUSR1" && job) await requeue(job);
  return outcome.status;
}
