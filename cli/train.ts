// `heatformer train` (and `deno run train.ts`): flags -> a validated RunConfig -> train().
import type { Command } from "commander";
import { configFields, DEFAULT_RUN, type RunConfig, validateConfig } from "../training/config.ts";
import { checkFlags } from "../training/preflight.ts";
import { train } from "../training/trainer.ts";
import { type Origins, type Resolved, resolveLayers } from "../training/resolve.ts";
import { dryRun, type DryRunReport } from "../training/dry_run.ts";
import { fmtBytes } from "../runtime/buffer_pool.ts";
import { checkpointMetadata } from "../io/checkpoint.ts";
import { join } from "node:path";
import { Runtime } from "../runtime/runtime.ts";
import { printJson, UsageError } from "./output.ts";

export type Flags = Record<string, string | boolean | undefined>;

/** Flag -> config field, with how to parse it. */
const NUM = (v: string) => Number(v);
const FIELDS: [
  flag: string,
  field: keyof RunConfig,
  parse: (v: string) => unknown,
  help: string,
][] = [
  ["--model <name>", "model", String, "preset (heatformer models)"],
  [
    "--recipe <name>",
    "recipe",
    String,
    "training recipe (heatformer recipes; default: the preset's)",
  ],
  ["--width <n>", "width", NUM, "override the preset's width"],
  ["--depth <n>", "depth", NUM, "override the preset's depth"],
  ["--heads <n>", "heads", NUM, "override the preset's heads"],
  ["--dropout <p>", "dropout", NUM, "override the preset's dropout"],
  ["--drop-path <p>", "dropPath", NUM, "override the preset's stochastic depth"],
  ["--head-dropout <p>", "headDropout", NUM, "override the dropout before the classifier"],
  ["--stem <kind>", "stem", String, "vanilla on heatmaps: flat | joint frame embedding"],
  ["--stem-dim <n>", "stemDim", NUM, "joint stem: features per channel"],
  ["--spatial-init <kind>", "spatialInit", String, "heatmap pixel maps start as normal | fourier"],
  [
    "--heatmap-persons <kind>",
    "heatmapPersons",
    String,
    "heatmaps of several persons: merge | stack | separate (DSTformer)",
  ],
  ["--tubelet <t,h,w>", "tubelet", (v) => v.split(",").map(Number), "ViViT tubelet"],
  ["--input <kind>", "input", String, "heatmap | kp2d | kp3d"],
  ["--heatmap <kind>", "heatmap", String, "joint | limb | both"],
  ["--clip-len <n>", "clipLen", NUM, "frames per clip"],
  ["--sampling <kind>", "sampling", String, "frames: uniform (pyskl) | resample (MotionBERT)"],
  ["--persons <n>", "persons", NUM, "persons per sample (default 2; NW-UCLA has 1)"],
  ["--size <n>", "size", NUM, "heatmap side"],
  ["--sigma <s>", "sigma", NUM, "heatmap Gaussian sigma"],
  ["--data <file.arrow>", "data", String, "dataset (default: the built-in synthetic one)"],
  ["--split <name>", "split", String, "ntu60-xsub | ntu60-xview | nw-ucla | synth | TRAIN:VAL"],
  ["--rotation <deg>", "rotation", NUM, "augmentation: max rotation"],
  ["--noise <frac>", "noise", NUM, "augmentation: Gaussian noise (fraction of image size)"],
  ["--shift <frames>", "shift", NUM, "augmentation: max temporal shift"],
  ["--flip <p>", "flip", NUM, "horizontal flip probability (default 0.5; 0 for keypoints)"],
  ["--optimizer <kind>", "optimizer", String, "adamw | sgd"],
  ["--lr <x>", "lr", NUM, "peak learning rate"],
  ["--weight-decay <x>", "weightDecay", NUM, "weight decay"],
  ["--momentum <x>", "momentum", NUM, "SGD momentum"],
  ["--schedule <kind>", "schedule", String, "cosine | step | constant | exponential"],
  ["--warmup-epochs <n>", "warmupEpochs", NUM, "linear warm-up"],
  [
    "--milestones <list>",
    "milestones",
    (v) => v.split(",").map(Number),
    "step schedule: fractions of training",
  ],
  ["--gamma <x>", "gamma", NUM, "step schedule factor; exponential: factor per epoch"],
  ["--label-smoothing <x>", "labelSmoothing", NUM, "cross-entropy label smoothing"],
  ["--clip-norm <x>", "clipNorm", NUM, "global gradient-norm clip (0: off)"],
  ["--batch-size <n>", "batchSize", NUM, "samples per optimiser step"],
  ["--accumulate <n>", "accumulate", NUM, "micro-batches per step"],
  ["--epochs <n>", "epochs", NUM, "epochs"],
  ["--seed <n>", "seed", NUM, "seed (init, data order, augmentation, dropout)"],
  ["--test-clips <n>", "testClips", NUM, "final evaluation: clips per sample (heatmaps: 10)"],
  [
    "--final-checkpoint <which>",
    "finalCheckpoint",
    String,
    "final evaluation: last (default) | best (picked on the validation split)",
  ],
  ["--eval-every <n>", "evalEvery", NUM, "validate every N epochs (and after the last)"],
  ["--out <dir>", "out", String, "run folder"],
];

/** The config fields the train flags set (each RunConfig field must have one). */
export function flaggedFields(): Set<keyof RunConfig> {
  return new Set([...FIELDS.map(([, f]) => f), ...SWITCHES.map(([, f]) => f)]);
}

export function addTrainOptions(cmd: Command): Command {
  for (const [flag, , , help] of FIELDS) cmd.option(flag, help);
  return cmd
    .option("--nesterov", "SGD: Nesterov momentum")
    .option("--no-nesterov", "SGD: plain momentum")
    .option("--flip-test", "final evaluation: add flipped views (heatmaps: on by default)")
    .option("--no-flip-test", "final evaluation: no flipped views")
    .option("--view-align", "kp3d: turn each clip into the body's frame (view-invariant input)")
    .option("--bones", "keypoint inputs: the bone stream (each joint minus its parent)")
    .option(
      "--motion",
      "keypoint inputs: the motion stream (step to the next frame; with --bones, of the bones)",
    )
    .option("--f16", "mixed precision: f16 activations, f32 weights (needs shader-f16)")
    .option("--config <file.json>", "a JSON configuration (flags override it)")
    .option("--resume <run-dir>", "continue an interrupted run exactly (--epochs N extends it)")
    .option("--force", "replace a run already in the --out folder")
    .option(
      "--dry-run",
      "resolve, build, time a few steps; print the estimates; write no run folder",
    )
    .option("--json", "print only the final summary object on stdout");
}

/** The config field a flag sets (--clip-len -> clipLen). */
function flagKey(flag: string): string {
  return flag.split(" ")[0].slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}

/** Boolean flags and the config field each sets. */
const SWITCHES: [key: string, field: keyof RunConfig][] = [
  ["nesterov", "nesterov"],
  ["flipTest", "flipTest"],
  ["viewAlign", "viewAlign"],
  ["bones", "bones"],
  ["motion", "motion"],
  ["f16", "f16"],
];

/**
 * `--resume RUN`: the run's own configuration. Only --epochs may change (a larger value
 * extends the run); any other flag that disagrees with the run is refused, naming it.
 */
async function resumeConfig(o: Flags, dir: string): Promise<RunConfig> {
  let saved: Record<string, unknown>;
  try {
    saved = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  } catch (e) {
    throw new UsageError(`--resume: ${dir}/config.json is not readable (${(e as Error).message})`);
  }
  const fields = configFields(saved);
  const cfg = validateConfig({ ...DEFAULT_RUN, ...fields, out: dir });
  const given: [string, keyof RunConfig, unknown][] = [];
  for (const [flag, field, parse] of FIELDS) {
    const v = o[flagKey(flag)];
    if (typeof v === "string") given.push([flag.split(" ")[0], field, parse(v)]);
  }
  for (const [key, field] of SWITCHES) {
    if (o[key] !== undefined) given.push([`--${key}`, field, o[key]]);
  }
  if (typeof o.config === "string") {
    throw new UsageError("--config: a resumed run keeps its own configuration");
  }
  for (const [flag, field, value] of given) {
    if (field === "epochs" || field === "out") continue;
    if (JSON.stringify(value) !== JSON.stringify(cfg[field])) {
      throw new UsageError(
        `${flag}: a resumed run keeps its configuration (${field} = ${
          JSON.stringify(cfg[field])
        }); only --epochs may change, to extend it`,
      );
    }
  }
  const epochs = given.find(([, f]) => f === "epochs")?.[2];
  if (epochs !== undefined) {
    if (!Number.isInteger(epochs) || (epochs as number) < cfg.epochs) {
      throw new UsageError(
        `--epochs: ${epochs} is below the run's ${cfg.epochs}; a resumed run can only be extended`,
      );
    }
    cfg.epochs = epochs as number;
  }
  return cfg;
}

export interface ResolvedRun {
  cfg: RunConfig;
  resume: boolean;
  /** Where each field came from (a new run; a resumed one keeps its config.json's). */
  origins?: Origins;
}

export async function resolveConfig(o: Flags): Promise<ResolvedRun> {
  if (typeof o.resume === "string") return { cfg: await resumeConfig(o, o.resume), resume: true };
  const resolved = await resolveFlags(o);
  const base = resolved.fields;
  if (base.out === DEFAULT_RUN.out) {
    base.out = `runs/${base.model}-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  }
  try {
    return { cfg: validateConfig(base), resume: false, origins: resolved.origins };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The layers of a new run: a --config file and the flags over the preset and its recipe. */
async function resolveFlags(o: Flags): Promise<Resolved> {
  let fromFile: Record<string, unknown> = {};
  if (typeof o.config === "string") {
    try {
      const parsed = JSON.parse(await Deno.readTextFile(o.config));
      if (parsed && typeof parsed === "object") fromFile = parsed;
    } catch (e) {
      throw new UsageError(
        `--config: ${o.config} is not a readable JSON file (${(e as Error).message})`,
      );
    }
    // a run's own config.json may be reused: its record-only fields are not configuration, and
    // its folder is its own (the new run goes to --out or a new folder)
    const { out: _out, ...fields } = configFields(fromFile);
    fromFile = fields;
  }
  const flags: Record<string, unknown> = {};
  for (const [flag, field, parse] of FIELDS) {
    const v = o[flagKey(flag)];
    if (typeof v === "string") flags[field] = parse(v);
  }
  for (const [key, field] of SWITCHES) {
    if (o[key] !== undefined) flags[field] = o[key];
  }
  try {
    return resolveLayers(fromFile, flags);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The epochs a run has completed, from its last checkpoint's header (0 when unreadable). */
async function epochsDone(dir: string): Promise<number> {
  for (const name of ["last.safetensors", "last-1.safetensors"]) {
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

export async function trainCommand(o: Flags): Promise<void> {
  const { cfg, resume, origins } = await resolveConfig(o);
  checkFlags(cfg); // usage errors before any adapter is opened
  if (o.dryRun) {
    if (resume) throw new UsageError("--dry-run: checks a new run, not a --resume");
    const report = await dryRun(await Runtime.create(), cfg, origins ?? {});
    if (o.json) printJson(report);
    else printDryRun(report);
    return;
  }
  // Finished: every epoch trained and the summary written (a kill during the final evaluation
  // leaves no summary; resuming such a run only evaluates and writes it).
  if (resume && (await epochsDone(cfg.out)) >= cfg.epochs && (await finishedSummary(cfg.out))) {
    const msg = `${cfg.out}: finished (${cfg.epochs} of ${cfg.epochs} epochs); nothing to do ` +
      `(extend it with --epochs N)`;
    if (o.json) printJson({ run: cfg.out, finished: true, epochs: cfg.epochs });
    else console.log(msg);
    return;
  }
  const rt = await Runtime.create();
  const tty = Deno.stderr.isTerminal();
  let stop = false;
  const onInt = () => {
    if (stop) Deno.exit(130);
    stop = true;
    console.error("\nstopping after this step and saving (Ctrl-C again to quit at once)");
  };
  Deno.addSignalListener("SIGINT", onInt);
  const t0 = performance.now();
  try {
    const summary = await train(rt, cfg, resume, {
      log: (l) => console.error(tty ? `\r\x1b[K${l}` : l),
      progress: tty ? progressBar(cfg.epochs, t0) : undefined,
      shouldStop: () => stop,
      force: !!o.force,
      origins,
    });
    if (o.json) printJson(summary);
    else if (summary.final) {
      console.log(
        `${summary.run}: ${summary.model}, best val top-1 ${
          (summary.bestValAccuracy * 100).toFixed(1)
        }% (epoch ${summary.bestEpoch}); final top-1 ${
          (summary.final.top1 * 100).toFixed(1)
        }%, top-5 ${(summary.final.top5 * 100).toFixed(1)}% (${summary.final.checkpoint} ` +
          `checkpoint) in ${summary.seconds.toFixed(0)} s`,
      );
    } else {
      console.log(
        `${summary.run}: interrupted after ${summary.epochs} of ${cfg.epochs} epochs; ` +
          `continue with --resume ${summary.run}`,
      );
    }
    if (summary.interrupted) Deno.exit(130);
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
  }
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
  const fromFlags = Object.entries(r.origins).filter(([, o]) => o === "flag" || o === "config")
    .map(([k, o]) => `${k}=${JSON.stringify(c[k as keyof RunConfig])} (${o})`);
  const study = r.studyParameters
    ? ` (Table 2: ${(r.studyParameters / 1e6).toFixed(2)}M, ${
      ((r.parameters / r.studyParameters - 1) * 100).toFixed(1)
    }%)`
    : "";
  const lines = [
    `model ${r.model}: ${(r.parameters / 1e6).toFixed(2)}M parameters${study}, ` +
    `${r.gflopsPerSample.toFixed(2)} GFLOPs per sample`,
    `input ${r.input.kind} ${r.input.shape.join("x")}, ${c.persons} persons, sampling ` +
    `${c.sampling}${c.input === "heatmap" ? `, ${c.heatmap} heatmaps, ${c.heatmapPersons}` : ""}`,
    `recipe ${r.recipe}: ${c.optimizer} lr ${c.lr} wd ${c.weightDecay}, ${c.schedule}` +
    `${c.schedule === "exponential" ? ` x${c.gamma}/epoch` : ""}, ${c.epochs} epochs, ` +
    `batch ${c.batchSize}, clip-norm ${c.clipNorm}, label smoothing ${c.labelSmoothing}, ` +
    `test ${c.testClips} clip(s)${c.flipTest ? " + flip" : ""}`,
    `overrides: ${fromFlags.length ? fromFlags.join(", ") : "none"}`,
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
