// `sweep run --slurm`: one sbatch job array for the sweep's unfinished runs, one array task per
// run, each `heatformer sweep task DIR INDEX` (exec'd, so the signals reach heatformer). The
// script asks for `--requeue` and the time-limit warning (`--signal=USR1@S`): a preempted task
// (SIGTERM) saves and Slurm requeues it; a warned one saves and requeues itself; either way the
// requeued task resumes its run where it stopped.
import { resolve } from "node:path";
import { ConfigError } from "../training/experiment.ts";
import { heatformerCommand, shellQuote } from "./command.ts";
import { sweepPaths, type SweepRecord } from "./folder.ts";
import type { SlurmSettings } from "./spec.ts";

/** The warning before a time limit, when the sweep names none. */
const DEFAULT_SIGNAL_SECONDS = 120;

/** Array indices as sbatch takes them ("0-3", "1,3,5"). */
export function arraySpec(indices: number[], parallel?: number): string {
  const sorted = [...indices].sort((a, b) => a - b);
  const contiguous = sorted.every((v, i) => i === 0 || v === sorted[i - 1] + 1);
  const list = contiguous && sorted.length > 1 ? `${sorted[0]}-${sorted.at(-1)}` : sorted.join(",");
  return parallel ? `${list}%${parallel}` : list;
}

/** The job-array script for these runs of the sweep in `dir`. */
export function slurmScript(
  dir: string,
  record: SweepRecord,
  indices: number[],
  s: SlurmSettings,
): string {
  const abs = resolve(dir);
  const p = sweepPaths(abs);
  const line = (flag: string, v: string | number | undefined) =>
    v === undefined || v === "" ? [] : [`#SBATCH --${flag}=${v}`];
  const signal = s.signalSeconds ?? DEFAULT_SIGNAL_SECONDS;
  const cmd = [...heatformerCommand(), "sweep", "task", abs].map(shellQuote).join(" ");
  return [
    "#!/bin/bash",
    `# heatformer sweep ${record.name}: ${indices.length} runs (written by \`heatformer sweep run --slurm\`)`,
    `#SBATCH --job-name=hf-${record.name}`,
    `#SBATCH --array=${arraySpec(indices, s.parallel)}`,
    `#SBATCH --output=${p.logs}/%A_%a.log`,
    "#SBATCH --open-mode=append",
    "#SBATCH --requeue",
    ...(signal > 0 ? [`#SBATCH --signal=B:USR1@${signal}`] : []),
    "#SBATCH --ntasks=1",
    ...line("partition", s.partition),
    ...line("account", s.account),
    ...line("qos", s.qos),
    ...line("time", s.time),
    ...line("gres", s.gres),
    ...line("cpus-per-task", s.cpusPerTask),
    ...line("mem", s.mem),
    ...(s.extra ?? []).map((x) => `#SBATCH ${x.startsWith("-") ? x : `--${x}`}`),
    "",
    `cd ${shellQuote(Deno.cwd())}`,
    `exec ${cmd} "$SLURM_ARRAY_TASK_ID"`,
    "",
  ].join("\n");
}

async function run(cmd: string, args: string[]): Promise<string> {
  let out;
  try {
    out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    throw new ConfigError(
      `${cmd}: not available (${(e as Error).message}); is Slurm installed and on PATH?`,
    );
  }
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")}: ${dec.decode(out.stderr).trim() || `exit ${out.code}`}`,
    );
  }
  return dec.decode(out.stdout).trim();
}

/** Submits the script; returns the job id. */
export async function submit(script: string): Promise<string> {
  const id = (await run("sbatch", ["--parsable", script])).split(";")[0];
  if (!/^\d+$/.test(id)) throw new Error(`sbatch: unexpected answer "${id}"`);
  return id;
}

/**
 * Slurm's view of the sweep's array tasks, by array index: squeue for the jobs still known to
 * the controller (sacct is not consulted: many clusters, and a bare one, run no accounting).
 */
export async function slurmStates(record: SweepRecord): Promise<Map<string, string>> {
  const states = new Map<string, string>();
  const jobs = (record.slurm ?? []).map((j) => j.jobId);
  if (!jobs.length) return states;
  let text = "";
  try {
    text = await run("squeue", ["-h", "-r", "-j", jobs.join(","), "-o", "%K %T"]);
  } catch {
    return states; // squeue unavailable or the jobs are gone: the run folders say the rest
  }
  for (const line of text.split("\n")) {
    const [index, state] = line.trim().split(/\s+/);
    if (index && state && /^\d+$/.test(index)) states.set(index, state);
  }
  return states;
}
