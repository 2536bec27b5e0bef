// A sweep as a value: a base experiment (a config file or an inline partial experiment),
// flags applied to every run, and the runs: the product of `axes`, or explicit `rows` (tables
// like the study's, where not every combination exists), or rows x axes (rows x seeds). Each
// run is named from its values, so its folder is stable across plans, machines and resubmits.
import { Command } from "commander";
import { z } from "zod";
import { addExperimentOptions, flagName, flagsLayer, parseLeafValue } from "../cli/flags.ts";
import {
  type Experiment,
  type Layer,
  leafByPath,
  LEAVES,
  setLeaf,
} from "../training/experiment.ts";
import { parseConfigText, readConfigLayer } from "../training/experiment_file.ts";
import { ConfigError, validateLayer } from "../training/experiment.ts";
import { type NamedLayer, type Origins, resolveExperiment } from "../training/resolve.ts";
import { dirname, isAbsolute, join } from "node:path";

type Scalar = string | number | boolean | null;
/** An axis value: as a flag would take it, or a list (a tubelet, milestones). */
export type Value = Scalar | Scalar[];

const SlurmSchema = z.object({
  partition: z.string().optional(),
  account: z.string().optional(),
  qos: z.string().optional(),
  time: z.string().optional(),
  gres: z.string().optional(),
  cpusPerTask: z.number().int().positive().optional(),
  mem: z.string().optional(),
  /** The warning before a time limit: SIGUSR1 this many seconds before (0: none). */
  signalSeconds: z.number().int().min(0).optional(),
  /** At most this many array tasks at once (`--array=0-N%K`). */
  parallel: z.number().int().positive().optional(),
  /** More `#SBATCH` lines, as written (`"--constraint=a100"`). */
  extra: z.array(z.string()).optional(),
}).strict();

/** The sbatch settings of a sweep (flags of `sweep run --slurm` override them). */
export interface SlurmSettings {
  partition?: string;
  account?: string;
  qos?: string;
  time?: string;
  gres?: string;
  cpusPerTask?: number;
  mem?: string;
  signalSeconds?: number;
  parallel?: number;
  extra?: string[];
}

const ValueSchema = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.null(),
  z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])),
]);

const SweepSchema = z.object({
  name: z.string().regex(/^[\w.-]+$/).optional(),
  description: z.string().optional(),
  base: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  flags: z.string().optional(),
  axes: z.record(z.string(), z.array(ValueSchema).min(1)).optional(),
  rows: z.array(z.record(z.string(), ValueSchema)).min(1).optional(),
  /** The axis whose values are repetitions (averaged in the report): "seed" by default. */
  repeat: z.string().optional(),
  slurm: SlurmSchema.optional(),
}).strict();

export interface SweepFile {
  name?: string;
  description?: string;
  base?: string | Record<string, unknown>;
  flags?: string;
  axes?: Record<string, Value[]>;
  rows?: Record<string, Value>[];
  repeat?: string;
  slurm?: SlurmSettings;
}

/** One run of a sweep: its name (and folder), its axis values and its resolved experiment. */
export interface PlannedRun {
  index: number;
  name: string;
  values: Record<string, Value>;
  experiment: Experiment;
  origins: Origins;
}

export interface Plan {
  /** The sweep file (absolute), and where its runs go. */
  file: string;
  name: string;
  out: string;
  sweep: SweepFile;
  /** The axis names, in order (rows' keys first), and the repetition axis. */
  axes: string[];
  repeat: string;
  runs: PlannedRun[];
}

/** Reads and validates a sweep file (JSON with comments). */
export async function readSweepFile(file: string): Promise<SweepFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(`${file}: not readable (${(e as Error).message})`);
  }
  const r = SweepSchema.safeParse(parseConfigText(text, file));
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ConfigError(`${file}: ${i.path.join(".") || "(top level)"}: ${i.message}`);
  }
  if (!r.data.axes && !r.data.rows) {
    throw new ConfigError(`${file}: a sweep needs "axes" or "rows" (or both)`);
  }
  return r.data as SweepFile;
}

/** An axis key as a leaf: a flag name without dashes ("weight-decay") or a path. */
function axisLeaf(key: string, file: string) {
  const leaf = leafByPath(key) ?? LEAVES.find((l) => flagName(l) === key);
  if (!leaf) {
    throw new ConfigError(
      `${file}: axis "${key}" is neither a train flag (without dashes) nor an experiment path`,
    );
  }
  return leaf;
}

/** The layer of one run's values. */
function valuesLayer(values: Record<string, Value>, file: string): Layer {
  const layer: Layer = {};
  for (const [key, v] of Object.entries(values)) {
    const leaf = axisLeaf(key, file);
    const text = Array.isArray(v) ? v.join(",") : v === null ? "none" : String(v);
    const value = typeof v === "string" || Array.isArray(v) || v === null
      ? parseLeafValue(leaf, text, `${file}: ${key}`)
      : v;
    setLeaf(layer, leaf.path, value);
  }
  return layer;
}

/** The flags string as a layer, parsed as `train` parses them. */
function flagsStringLayer(flags: string, file: string): Layer {
  const args = flags.trim() ? flags.trim().split(/\s+/) : [];
  const cmd = addExperimentOptions(
    new Command().exitOverride().configureOutput({
      writeErr: () => {},
    }),
  );
  try {
    cmd.parse(args, { from: "user" });
  } catch (e) {
    throw new ConfigError(`${file}: flags: ${(e as Error).message}`);
  }
  return flagsLayer(cmd.opts());
}

/** The combinations: rows x the product of the axes, in order. */
function combinations(s: SweepFile): Record<string, Value>[] {
  let out: Record<string, Value>[] = s.rows ? s.rows.map((r) => ({ ...r })) : [{}];
  for (const [key, values] of Object.entries(s.axes ?? {})) {
    out = out.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
  }
  return out;
}

/** A folder name from a run's values: stable, readable, safe on any file system. */
export function runName(values: Record<string, Value>): string {
  const part = (v: Value) => Array.isArray(v) ? v.join("x") : String(v);
  const name = Object.entries(values).map(([k, v]) => `${k}-${part(v)}`).join("_")
    .replace(/[^\w.+=-]+/g, "-");
  return name || "run";
}

async function baseLayer(s: SweepFile, file: string): Promise<NamedLayer[]> {
  if (s.base === undefined) return [];
  if (typeof s.base === "string") {
    const path = isAbsolute(s.base) ? s.base : join(dirname(file), s.base);
    const found = await Deno.stat(path).then(() => path, () => s.base as string);
    return [{ origin: `config ${found}`, layer: await readConfigLayer(found) }];
  }
  return [{ origin: `sweep ${file}`, layer: validateLayer(s.base, `${file}: base: `) }];
}

/** The sweep's runs, each resolved and validated before anything is submitted. */
export async function planSweep(file: string, out?: string, extraFlags = ""): Promise<Plan> {
  const sweep = await readSweepFile(file);
  const name = sweep.name ?? file.split("/").pop()!.replace(/\.jsonc?$/, "");
  const folder = out ?? join("runs", "sweeps", name);
  const base = await baseLayer(sweep, file);
  const flags = sweep.flags
    ? [{ origin: "sweep flags", layer: flagsStringLayer(sweep.flags, file) }]
    : [];
  // --flags of the command apply to every run, over its axis values
  const extra = extraFlags
    ? [{ origin: "flag", layer: flagsStringLayer(extraFlags, "--flags") }]
    : [];
  const runs: PlannedRun[] = [];
  const seen = new Map<string, number>();
  for (const values of combinations(sweep)) {
    const runLayer = { origin: "sweep axis", layer: valuesLayer(values, file) };
    const rn = runName(values);
    if (seen.has(rn)) throw new ConfigError(`${file}: two runs would share the folder ${rn}`);
    seen.set(rn, runs.length);
    const outLayer = { origin: "sweep", layer: { run: { out: join(folder, "runs", rn) } } };
    let resolved;
    try {
      resolved = resolveExperiment([...base, ...flags, runLayer, ...extra, outLayer]);
    } catch (e) {
      throw new ConfigError(`${file}: run ${rn}: ${(e as Error).message}`);
    }
    runs.push({ index: runs.length, name: rn, values, ...resolved });
  }
  const axes = [...new Set(combinations(sweep).flatMap((c) => Object.keys(c)))];
  return { file, name, out: folder, sweep, axes, repeat: sweep.repeat ?? "seed", runs };
}
