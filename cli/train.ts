// `heatformer train` (and `deno run train.ts`): config files and flags -> a validated
// experiment (training/resolve.ts) -> train().
import type { Command } from "commander";
import type { Experiment } from "../training/experiment.ts";
import { getLeaf, layerLeaves, withRunFolder } from "../training/experiment.ts";
import { readConfigLayer, readRunConfig } from "../training/experiment_file.ts";
import { checkFlags } from "../training/preflight.ts";
import { LAST, PREVIOUS } from "../training/run_folder.ts";
import { train, type TrainSummary } from "../training/trainer.ts";
import { StopSignals } from "./stop_signals.ts";
import { type NamedLayer, type Origins, resolveExperiment } from "../training/resolve.ts";
import { dryRun, type DryRunReport } from "../training/dry_run.ts";
import { effectiveLr } from "../training/experiment.ts";
import { fmtBytes } from "../runtime/buffer_pool.ts";
import { checkpointMetadata } from "../io/checkpoint.ts";
import { join } from "node:path";
import { Runtime } from "../runtime/runtime.ts";
import { printJson, UsageError } from "./output.ts";
import { addExperimentOptions, flagOf, type Flags, flagsLayer, withFlags } from "./flags.ts";
import { printConfig } from "./print_config.ts";

export type { Flags };

export function addTrainOptions(cmd: Command): Command {
  return addExperimentOptions(cmd)
    .option("--resume <run-dir>", "continue an interrupted run exactly (--epochs N extends it)")
    .option("--force", "replace a run already in the --out folder")
    .option(
      "--dry-run",
      "resolve, build, time a few steps; print the estimates; write no run folder",
    )
    .option("--json", "print only the final summary object on stdout");
}

/**
 * `--resume RUN`: the run's own experiment. Only --epochs may change (a larger value extends
 * the run); any other flag that disagrees with the run is refused, naming it.
 */
async function resumeExperiment(o: Flags, dir: string): Promise<Experiment> {
  if (o.config !== undefined) {
    throw new UsageError("--config: a resumed run keeps its own configuration");
  }
  const { experiment } = await readRunConfig(dir).catch((e) => {
    throw new UsageError(`--resume: ${(e as Error).message}`);
  });
  experiment.run.out = dir;
  const given = flagsLayer(o);
  for (const [path, value] of layerLeaves(given)) {
    if (path === "run.epochs" || path === "run.out") continue;
    const kept = getLeaf(experiment, path);
    if (JSON.stringify(value) !== JSON.stringify(kept)) {
      throw new UsageError(
        `${flagOf(path)}: a resumed run keeps its configuration (${path} = ${
          JSON.stringify(kept)
        }); only --epochs may change, to extend it`,
      );
    }
  }
  const epochs = given.run?.epochs;
  if (epochs !== undefined) {
    if (epochs < experiment.run.epochs) {
      throw new UsageError(
        `--epochs: ${epochs} is below the run's ${experiment.run.epochs}; a resumed run can only be extended`,
      );
    }
    experiment.run.epochs = epochs;
  }
  return experiment;
}

export interface ResolvedRun {
  experiment: Experiment;
  resume: boolean;
  /** Where each leaf came from (a new run; a resumed one keeps its config.json's). */
  origins?: Origins;
}

/**
 * The user's layers: each --config file in order, then the flags (with --set); after a
 * command's own layer (`pretrain`'s task and recipe) where it has one.
 */
export async function userLayers(o: Flags, command: NamedLayer[] = []): Promise<NamedLayer[]> {
  const layers: NamedLayer[] = [...command];
  for (const file of (o.config as string[] | undefined) ?? []) {
    layers.push({ origin: `config ${file}`, layer: await readConfigLayer(file) });
  }
  layers.push({ origin: "flag", layer: flagsLayer(o) });
  return layers;
}

export async function resolveConfig(o: Flags, command: NamedLayer[] = []): Promise<ResolvedRun> {
  try {
    if (typeof o.resume === "string") {
      return { experiment: await resumeExperiment(o, o.resume), resume: true };
    }
    const { experiment, origins } = resolveExperiment(await userLayers(o, command));
    return { experiment, resume: false, origins };
  } catch (e) {
    throw withFlags(e);
  }
}

/** The epochs a run has completed, from its last checkpoint's header (0 when unreadable). */
async function epochsDone(dir: string): Promise<number> {
  for (const name of [LAST, PREVIOUS]) {
    try {
      const meta = await checkpointMetadata(join(dir, name));
      return JSON.parse(meta.position ?? "{}").epoch ?? 0;
    } catch { /* damaged or missing: the trainer says which, and falls back */ }
  }
  return 0;
}

/** Whether the run's summary.json says it finished (not interrupted). */
async function finishedSummary(dir: string): Promise<boolean> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, "summary.json"))).interrupted === false;
  } catch {
    return false;
  }
}

/** What a training command did: the summary (null when it had nothing to do), and its exit
 * status (0, or 128 + the signal that stopped it). */
export interface TrainOutcome {
  summary: TrainSummary | null;
  status: number;
  signal: string | null;
}

export async function trainCommand(o: Flags, command: NamedLayer[] = []): Promise<void> {
  const { status } = await runTraining(o, command);
  if (status) Deno.exit(status);
}

/**
 * `pretrain`'s layer: MotionBERT's task on 3D skeletons (run.objective motion3d: one person's
 * noisy, masked 2D view in, its 3D motion out) with its recipe, for the CPU-sized DSTformer.
 */
export const PRETRAIN_LAYER: NamedLayer = {
  origin: "pretrain",
  layer: {
    model: { preset: "motionbert-tiny" },
    input: { kind: "kp2d", persons: 1 },
    run: { recipe: "motionbert-pretrain", objective: "motion3d" },
  },
};

/** `train`: resolve, check, and train (or resume) with clean stops on signals. */
export async function runTraining(o: Flags, command: NamedLayer[] = []): Promise<TrainOutcome> {
  const { experiment, resume, origins } = await resolveConfig(o, command);
  const none = { summary: null, status: 0, signal: null };
  if (o.printConfig) {
    if (resume) throw new UsageError("--print-config: prints a new run's experiment");
    printConfig(experiment, origins ?? {}, !!o.json);
    return none;
  }
  checkFlags(experiment); // usage errors before any adapter is opened
  const cfg = withRunFolder(experiment);
  if (o.dryRun) {
    if (resume) throw new UsageError("--dry-run: checks a new run, not a --resume");
    const report = await dryRun(await Runtime.create(), cfg, origins ?? {});
    if (o.json) printJson(report);
    else printDryRun(report);
    return none;
  }
  // Finished: every epoch trained and the summary written (a kill during the final evaluation
  // leaves no summary; resuming such a run only evaluates and writes it).
  if (resume && (await runFinished(cfg.run.out, cfg.run.epochs))) {
    const msg = `${cfg.run.out}: finished (${cfg.run.epochs} of ${cfg.run.epochs} epochs); ` +
      `nothing to do (extend it with --epochs N)`;
    if (o.json) printJson({ run: cfg.run.out, finished: true, epochs: cfg.run.epochs });
    else console.log(msg);
    return none;
  }
  const rt = await Runtime.create();
  const tty = Deno.stderr.isTerminal();
  const signals = new StopSignals();
  const t0 = performance.now();
  try {
    const summary = await train(rt, cfg, resume, {
      log: (l) => console.error(tty ? `\r\x1b[K${l}` : l),
      progress: tty ? progressBar(cfg.run.epochs, t0) : undefined,
      shouldStop: () => signals.stopped,
      force: !!o.force,
      origins,
    });
    if (o.json) printJson(summary);
    else console.log(summaryLine(summary, cfg.run.epochs));
    const status = summary.interrupted ? (signals.exitCode || 130) : 0;
    return { summary, status, signal: signals.signal };
  } finally {
    signals.dispose();
  }
}

/** Whether a run folder holds a finished run of `epochs` epochs. */
export async function runFinished(dir: string, epochs: number): Promise<boolean> {
  return (await epochsDone(dir)) >= epochs && (await finishedSummary(dir));
}

function summaryLine(s: TrainSummary, epochs: number): string {
  if (s.motion) {
    return `${s.run}: ${s.model} pretrained, val MPJPE ${
      s.motion.mpjpe.toFixed(4)
    } (crop units) in ${s.seconds.toFixed(0)} s`;
  }
  if (!s.final) {
    return `${s.run}: interrupted after ${s.epochs} of ${epochs} epochs; continue with ` +
      `--resume ${s.run}`;
  }
  return `${s.run}: ${s.model}, best val top-1 ${(s.bestValAccuracy * 100).toFixed(1)}% ` +
    `(epoch ${s.bestEpoch}); final top-1 ${(s.final.top1 * 100).toFixed(1)}%, top-5 ` +
    `${(s.final.top5 * 100).toFixed(1)}% (${s.final.checkpoint} checkpoint) in ` +
    `${s.seconds.toFixed(0)} s`;
}

/** One progress bar per epoch on a terminal, with samples/s and ETA. */
function progressBar(epochs: number, t0: number) {
  return (epoch: number, done: number, total: number, sps: number) => {
    const w = 24, f = Math.round((done / total) * w);
    const eta = ((total - done) * (performance.now() - t0) / Math.max(1, done)) / 1000;
    Deno.stderr.writeSync(new TextEncoder().encode(
      `\r\x1b[Kepoch ${epoch + 1}/${epochs} [${"#".repeat(f)}${
        ".".repeat(w - f)
      }] ${done}/${total} ${sps.toFixed(0)} samples/s ETA ${eta.toFixed(0)}s`,
    ));
  };
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** The dry run as a few lines: what would run, what it costs here. */
function printDryRun(r: DryRunReport): void {
  const c = r.config;
  const fromUser = Object.entries(r.origins).filter(([, o]) =>
    o === "flag" || o.startsWith("config")
  )
    .map(([path, o]) => `${path}=${JSON.stringify(getLeaf(c, path))} (${o})`);
  const study = r.studyParameters
    ? ` (Table 2: ${(r.studyParameters / 1e6).toFixed(2)}M, ${
      ((r.parameters / r.studyParameters - 1) * 100).toFixed(1)
    }%)`
    : "";
  const lines = [
    `model ${r.model}: ${(r.parameters / 1e6).toFixed(2)}M parameters${study}, ` +
    `${r.gflopsPerSample.toFixed(2)} GFLOPs per sample`,
    `input ${r.input.kind} ${r.input.shape.join("x")}, ${c.input.persons} persons, sampling ` +
    `${c.input.sampling}${
      c.input.kind === "heatmap" ? `, ${c.input.heatmap} heatmaps, ${c.input.heatmapPersons}` : ""
    }`,
    `recipe ${r.recipe}: ${c.optim.optimizer} lr ${effectiveLr(c)} wd ${c.optim.weightDecay}, ` +
    `${c.schedule.kind}${c.schedule.kind === "exponential" ? ` x${c.schedule.gamma}/epoch` : ""}` +
    `, ${c.run.epochs} epochs, batch ${c.optim.batchSize}, clip-norm ${c.optim.clipNorm}, ` +
    `label smoothing ${c.optim.labelSmoothing}, test ${c.eval.clips} clip(s)${
      c.eval.flip ? " + flip" : ""
    }`,
    `overrides: ${fromUser.length ? fromUser.join(", ") : "none"}`,
    `data ${r.data.path}: ${r.data.train} train (${r.data.split[0]}) / ${r.data.val} val ` +
    `(${r.data.split[1]}), ${r.data.classes} classes`,
    `on ${r.adapter}: ${r.msPerStep.toFixed(1)} ms per step (${
      r.samplesPerSec.toFixed(1)
    } samples/s), peak GPU memory ${fmtBytes(r.peakGpuBytes)}`,
    `${r.stepsPerEpoch} steps per epoch: ~${duration(r.estimate.epochSeconds)} per epoch, ` +
    `~${duration(r.estimate.runSeconds)} for the run (validation and final test included)`,
    ...r.warnings.map((w) => `warning: ${w}`),
    "dry run: no run folder written",
  ];
  for (const l of lines) console.log(l);
}
