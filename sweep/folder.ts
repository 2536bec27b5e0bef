// A sweep's folder: what was planned (sweep.json, one resolved config per run), where each
// run trains (runs/NAME, an ordinary run folder) and what each task attempt did (tasks/NAME.json).
// Everything `sweep status` and `sweep report` say comes from these files, so they work for a
// local queue and for Slurm alike, and after the machine that ran them is gone.
import { join } from "node:path";
import { configText } from "../cli/print_config.ts";
import type { Experiment } from "../training/experiment.ts";
import { ConfigError } from "../training/experiment.ts";
import { readConfigLayer, readRunConfig } from "../training/experiment_file.ts";
import { resolveExperiment } from "../training/resolve.ts";
import { writeAtomic } from "../training/run_folder.ts";
import type { Plan, Value } from "./spec.ts";

export const SWEEP_FORMAT = "heatformer-sweep/1";

/** sweep.json: the plan as recorded (the runs' experiments are in configs/). */
export interface SweepRecord {
  format: string;
  file: string;
  name: string;
  axes: string[];
  repeat: string;
  runs: { index: number; name: string; values: Record<string, Value> }[];
  /** Slurm submissions: job id and the array indices it ran. */
  slurm?: { jobId: string; indices: number[]; submitted: string; script: string }[];
}

/** One attempt of a task: a process that trained (or resumed) the run. */
export interface Attempt {
  start: string;
  end?: string;
  host: string;
  pid: number;
  /** The Slurm job of the attempt ("JOB_TASK"), if any. */
  job?: string;
  /** Exit status: 0 done, 128 + n stopped by signal n, 1 / 2 failed. */
  status?: number;
  signal?: string | null;
  error?: string;
}

export const sweepPaths = (dir: string) => ({
  record: join(dir, "sweep.json"),
  config: (name: string) => join(dir, "configs", `${name}.json`),
  run: (name: string) => join(dir, "runs", name),
  task: (name: string) => join(dir, "tasks", `${name}.json`),
  logs: join(dir, "logs"),
  script: join(dir, "slurm.sh"),
});

export async function readSweepRecord(dir: string): Promise<SweepRecord> {
  const path = sweepPaths(dir).record;
  try {
    const r = JSON.parse(await Deno.readTextFile(path)) as SweepRecord;
    if (r.format !== SWEEP_FORMAT) throw new Error(`format ${r.format}, expected ${SWEEP_FORMAT}`);
    return r;
  } catch (e) {
    throw new ConfigError(`${path}: not a sweep folder (${(e as Error).message})`);
  }
}

/** The experiment text a run is trained from (comparable across plans). */
function experimentKey(e: Experiment): string {
  return JSON.stringify(e);
}

/**
 * Writes the plan into its folder. A folder that already holds this sweep is continued (its
 * finished runs kept); one holding another sweep, or the same run names with other
 * experiments, is refused: runs are never mixed.
 */
export async function writePlan(plan: Plan): Promise<SweepRecord> {
  const p = sweepPaths(plan.out);
  let old: SweepRecord | null = null;
  try {
    old = await readSweepRecord(plan.out);
  } catch { /* a new sweep */ }
  for (const run of plan.runs) {
    const saved = await Deno.readTextFile(p.config(run.name)).catch(() => null);
    if (saved === null) continue;
    const { experiment } = await readConfigFileExperiment(p.config(run.name));
    if (experimentKey(experiment) !== experimentKey(run.experiment)) {
      throw new ConfigError(
        `${plan.out}: run ${run.name} was planned with another experiment (${
          p.config(run.name)
        }); choose another --out, or remove that run`,
      );
    }
  }
  await Deno.mkdir(join(plan.out, "configs"), { recursive: true });
  await Deno.mkdir(join(plan.out, "tasks"), { recursive: true });
  await Deno.mkdir(p.logs, { recursive: true });
  for (const run of plan.runs) {
    await writeAtomic(p.config(run.name), configText(run.experiment, run.origins) + "\n");
  }
  const record: SweepRecord = {
    format: SWEEP_FORMAT,
    file: plan.file,
    name: plan.name,
    axes: plan.axes,
    repeat: plan.repeat,
    runs: plan.runs.map(({ index, name, values }) => ({ index, name, values })),
    slurm: old?.slurm,
  };
  await writeAtomic(p.record, JSON.stringify(record, null, 2) + "\n");
  return record;
}

async function readConfigFileExperiment(file: string): Promise<{ experiment: Experiment }> {
  return resolveExperiment([{ origin: file, layer: await readConfigLayer(file) }]);
}

export async function saveSweepRecord(dir: string, r: SweepRecord): Promise<void> {
  await writeAtomic(sweepPaths(dir).record, JSON.stringify(r, null, 2) + "\n");
}

export async function readAttempts(dir: string, name: string): Promise<Attempt[]> {
  try {
    return JSON.parse(await Deno.readTextFile(sweepPaths(dir).task(name))) as Attempt[];
  } catch {
    return [];
  }
}

export async function saveAttempts(dir: string, name: string, a: Attempt[]): Promise<void> {
  await writeAtomic(sweepPaths(dir).task(name), JSON.stringify(a, null, 2) + "\n");
}

/** The experiment a run folder holds, if it was started. */
export async function startedExperiment(dir: string, name: string): Promise<Experiment | null> {
  try {
    return (await readRunConfig(sweepPaths(dir).run(name))).experiment;
  } catch {
    return null;
  }
}
