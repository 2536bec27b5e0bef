// The run folder: one run's files and their guarantees. A new run's folder is never made over
// another run's (unless forced); config.json (the resolved experiment, its origins, the record)
// and a first checkpoint are written before the first step; checkpoints are atomic, `last`
// keeping the one before it; a resume removes the temporary files of interrupted writes,
// verifies a checkpoint (falling back to last-1), cuts the metrics to the epochs it has seen and
// rewrites the event file from them.
import { join, resolve } from "node:path";
import { layoutJson } from "../data/layout_file.ts";
import { writeAtomic as writeFileAtomic } from "../io/atomic.ts";
import { CheckpointError, loadCheckpoint, saveCheckpoint } from "../io/checkpoint.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { RunExperiment } from "./experiment.ts";
import { readRunConfig, runConfigText, type RunRecordFields } from "./experiment_file.ts";
import { ConfigError } from "./preflight.ts";
import type { Origins } from "./resolve.ts";
import type { RunData, Setup } from "./setup.ts";
import { type EpochMetrics, readMetrics } from "./metrics_file.ts";
import { LOCK_FILE, RunLock } from "./run_lock.ts";
import { EVENTS_PREFIX, hparamsOf, writeEvents } from "./tensorboard.ts";

export type { EpochMetrics };

/** The checkpoints of a run folder: the last epoch's (and the one before it), the best. */
export const LAST = "last.safetensors", PREVIOUS = "last-1.safetensors", BEST = "best.safetensors";
/** A pretraining run's final weights without optimiser state (what fine-tuning starts from). */
export const ENCODER = "encoder.safetensors";

/** An epoch's running sums: loss and hits so far, samples seen, loss per logging interval. */
export interface Carry {
  loss: number;
  correct: number;
  seen: number;
  /** Summed loss x samples per logging interval of the epoch (absent: zeros). */
  curve?: number[];
}

/** Where a run is: its epoch, the batch within it, the best so far and the epoch's running sums. */
export interface Position {
  /** The run this position belongs to (absent in checkpoints from before run ids). */
  runId?: string;
  epoch: number;
  batch: number;
  best: { epoch: number; acc: number };
  carry: Carry;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes a file through a temporary one (`PATH.tmp`) and a rename: never half-written; a
 * failed write leaves no temporary file. */
export function writeAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, text);
}

/** The temporary files this folder's writers use (checkpoints, config, metrics, summary, events). */
const STALE_TMP = [
  /\.safetensors\.tmp$/,
  /^config\.json\.tmp$/,
  /^metrics\.jsonl\.tmp$/,
  /^summary\.json\.tmp$/,
  new RegExp(`^${EVENTS_PREFIX.replaceAll(".", "\\.")}.*\\.tmp$`),
];

/**
 * Removes what an interrupted write (a kill, a full disk) left in a run folder: its own
 * temporary files, by their known names only. Called with the folder's lock held.
 */
export async function removeStaleTemporaries(
  out: string,
  log: (line: string) => void,
): Promise<string[]> {
  const removed: string[] = [];
  for await (const e of Deno.readDir(out)) {
    if (e.isFile && STALE_TMP.some((p) => p.test(e.name))) {
      await Deno.remove(join(out, e.name));
      removed.push(e.name);
    }
  }
  if (removed.length) {
    log(
      `${out}: removed ${removed.length} temporary file(s) of an interrupted write: ${
        removed.sort().join(", ")
      }`,
    );
  }
  return removed;
}

/** A run folder taken by this process: whether this call created it, and its lock. */
export interface Folder {
  created: boolean;
  lock: RunLock;
}

/**
 * Makes (or, for a resume, opens) the run folder and takes its lock before looking at what is
 * there: a second process with the same --out stops here, naming the first. A run already in
 * the folder is replaced only with `force`.
 */
export async function prepareFolder(
  out: string,
  resume: boolean,
  force: boolean,
  log: (line: string) => void = () => {},
): Promise<Folder> {
  if (resume && !(await exists(join(out, "config.json")))) {
    throw new ConfigError(`--resume ${out}: no run there (config.json is missing)`);
  }
  const created = !(await exists(out));
  await Deno.mkdir(out, { recursive: true });
  const lock = await RunLock.acquire(out, log);
  try {
    if (resume) await removeStaleTemporaries(out, log);
    if (!resume && (await exists(join(out, "config.json")))) {
      if (!force) {
        throw new ConfigError(
          `--out ${out}: a run is already there; --resume it, choose another --out, or add ` +
            "--force to replace it",
        );
      }
      for await (const e of Deno.readDir(out)) {
        if (e.name !== LOCK_FILE) await Deno.remove(join(out, e.name), { recursive: true });
      }
    }
  } catch (e) {
    lock.release();
    throw e;
  }
  return { created, lock };
}

/** What a checkpoint records beside the tensors: the model, its input, the data, the position. */
export function checkpointMeta(cfg: RunExperiment, s: Setup, data: RunData, pos: Position) {
  return {
    preset: cfg.model.preset,
    config: JSON.stringify(s.mc),
    // The input pipeline and the data too, so that a checkpoint alone evaluates like its run.
    input: JSON.stringify(s.spec),
    data: JSON.stringify({ path: data.path, split: cfg.data.split }),
    // the layout and class names, so that predict works on new data without the training file
    layout: JSON.stringify(layoutJson(s.layout)),
    // how the data's scores followed a layout conversion, for eval / predict of the file alone
    layout_scores: cfg.data.layoutScores,
    classes: JSON.stringify(data.file.meta.classes),
    position: JSON.stringify(pos),
  };
}

export async function saveLast(
  rt: Runtime,
  cfg: RunExperiment,
  s: Setup,
  data: RunData,
  pos: Position,
): Promise<void> {
  await saveCheckpoint(
    rt,
    join(cfg.run.out, LAST),
    s.model,
    s.opt,
    checkpointMeta(cfg, s, data, pos),
    join(cfg.run.out, PREVIOUS),
  );
}

/** A new run: its resolved configuration, an empty metrics file, and a first checkpoint. */
export async function startRun(
  rt: Runtime,
  cfg: RunExperiment,
  s: Setup,
  data: RunData,
  origins: Origins = {},
  extra: RunRecordFields = {},
): Promise<Position> {
  const experiment = {
    ...cfg,
    data: { ...cfg.data, path: cfg.data.path ? data.path : null },
    run: { ...cfg.run, out: resolve(cfg.run.out) },
  };
  // the run's identity, in its config, every checkpoint (position) and every metrics line
  const runId = crypto.randomUUID();
  await writeAtomic(
    join(cfg.run.out, "config.json"),
    runConfigText(experiment, origins, { runId, dataFile: data.path, modelConfig: s.mc, ...extra }),
  );
  await writeAtomic(join(cfg.run.out, "metrics.jsonl"), "");
  await writeEvents(cfg.run.out, hparamsOf(cfg, s.mc), [], s.stepsPerEpoch);
  const pos: Position = {
    runId,
    epoch: 0,
    batch: 0,
    best: { epoch: -1, acc: -1 },
    carry: { loss: 0, correct: 0, seen: 0 },
  };
  await saveLast(rt, cfg, s, data, pos); // any run that started can be resumed
  return pos;
}

/**
 * Loads the last checkpoint (or, when it is damaged or missing, the one before it), cuts the
 * metrics to the epochs it has seen (a kill between a metrics line and its checkpoint leaves
 * one line too many), and records the configuration (a larger --epochs).
 */
export async function resumeRun(
  rt: Runtime,
  cfg: RunExperiment,
  s: Setup,
  log: (line: string) => void,
): Promise<Position> {
  const saved = await readRunConfig(cfg.run.out);
  const runId = typeof saved.record.runId === "string" ? saved.record.runId : undefined;
  let meta: Record<string, string> | null = null;
  const failures: string[] = [];
  for (const name of [LAST, PREVIOUS]) {
    try {
      meta = await loadCheckpoint(rt, join(cfg.run.out, name), s.model, s.opt);
      if (failures.length) log(`${failures.join("; ")}; resuming from ${join(cfg.run.out, name)}`);
      break;
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      failures.push(e.message);
    }
  }
  if (!meta) {
    throw new CheckpointError(
      `--resume ${cfg.run.out}: no usable checkpoint (${failures.join("; ")}); start the run again`,
    );
  }
  const pos = JSON.parse(meta.position ?? "{}") as Partial<Position>;
  if (runId && pos.runId !== runId) {
    throw new CheckpointError(
      `--resume ${cfg.run.out}: its checkpoint belongs to ${
        pos.runId ? `run ${pos.runId}` : "a run without an id"
      }, not to this folder's run ${runId}; it was copied in from another run (restore this ` +
        "run's own checkpoint, or start a new run)",
    );
  }
  const at: Position = {
    runId,
    epoch: pos.epoch ?? 0,
    batch: pos.batch ?? 0,
    best: pos.best ?? { epoch: -1, acc: -1 },
    carry: pos.carry ?? { loss: 0, correct: 0, seen: 0 },
  };
  const metricsPath = join(cfg.run.out, "metrics.jsonl");
  const { lines, torn } = await readMetrics(metricsPath);
  if (torn) {
    log(
      `${metricsPath}: dropped a torn last line (${torn.length} bytes); its epoch is trained again`,
    );
  }
  const kept = lines.filter((m) =>
    m.epoch <= at.epoch && (!m.runId || !runId || m.runId === runId)
  );
  await writeAtomic(metricsPath, kept.map((m) => JSON.stringify(m) + "\n").join(""));
  // the event file follows the metrics it was written from: no epoch twice
  await writeEvents(cfg.run.out, hparamsOf(cfg, s.mc), kept, s.stepsPerEpoch);
  if (saved.experiment.run.epochs !== cfg.run.epochs || saved.format === 1) {
    // an extension is recorded; a flat (format 1) config.json is rewritten in format 2
    const from = saved.experiment.run.epochs;
    const extended = [...(saved.record.extended ?? [])];
    if (from !== cfg.run.epochs) extended.push({ from, to: cfg.run.epochs, at: at.epoch });
    const experiment = {
      ...saved.experiment,
      run: { ...saved.experiment.run, epochs: cfg.run.epochs },
    };
    await writeAtomic(
      join(cfg.run.out, "config.json"),
      runConfigText(experiment, saved.origins, { ...saved.record, extended }),
    );
  }
  log(`resuming ${cfg.run.out} at epoch ${at.epoch + 1}, batch ${at.batch}`);
  return at;
}
