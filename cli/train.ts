// `heatformer train` (and `deno run train.ts`): flags -> a validated RunConfig -> train().
import type { Command } from "commander";
import { DEFAULT_RUN, type RunConfig, validateConfig } from "../training/config.ts";
import { train, TrainingStopped } from "../training/trainer.ts";
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
  ["--width <n>", "width", NUM, "override the preset's width"],
  ["--depth <n>", "depth", NUM, "override the preset's depth"],
  ["--heads <n>", "heads", NUM, "override the preset's heads"],
  ["--dropout <p>", "dropout", NUM, "override the preset's dropout"],
  ["--drop-path <p>", "dropPath", NUM, "override the preset's stochastic depth"],
  ["--tubelet <t,h,w>", "tubelet", (v) => v.split(",").map(Number), "ViViT tubelet"],
  ["--input <kind>", "input", String, "heatmap | kp2d | kp3d"],
  ["--heatmap <kind>", "heatmap", String, "joint | limb | both"],
  ["--clip-len <n>", "clipLen", NUM, "frames per clip"],
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
  ["--schedule <kind>", "schedule", String, "cosine | step | constant"],
  ["--warmup-epochs <n>", "warmupEpochs", NUM, "linear warm-up"],
  [
    "--milestones <list>",
    "milestones",
    (v) => v.split(",").map(Number),
    "step schedule: fractions of training",
  ],
  ["--gamma <x>", "gamma", NUM, "step schedule factor"],
  ["--label-smoothing <x>", "labelSmoothing", NUM, "cross-entropy label smoothing"],
  ["--clip-norm <x>", "clipNorm", NUM, "global gradient-norm clip (0: off)"],
  ["--batch-size <n>", "batchSize", NUM, "samples per optimiser step"],
  ["--accumulate <n>", "accumulate", NUM, "micro-batches per step"],
  ["--epochs <n>", "epochs", NUM, "epochs"],
  ["--seed <n>", "seed", NUM, "seed (init, data order, augmentation, dropout)"],
  ["--test-clips <n>", "testClips", NUM, "final evaluation: clips per sample"],
  ["--out <dir>", "out", String, "run folder"],
];

export function addTrainOptions(cmd: Command): Command {
  for (const [flag, , , help] of FIELDS) cmd.option(flag, help);
  return cmd
    .option("--nesterov", "SGD: Nesterov momentum")
    .option("--no-nesterov", "SGD: plain momentum")
    .option("--flip-test", "final evaluation: add flipped views")
    .option("--view-align", "kp3d: turn each clip into the body's frame (view-invariant input)")
    .option("--bones", "keypoint inputs: the bone stream (each joint minus its parent)")
    .option(
      "--motion",
      "keypoint inputs: the motion stream (step to the next frame; with --bones, of the bones)",
    )
    .option("--f16", "mixed precision: f16 activations, f32 weights (needs shader-f16)")
    .option("--config <file.json>", "a JSON configuration (flags override it)")
    .option("--resume <run-dir>", "continue an interrupted run exactly")
    .option("--json", "print only the final summary object on stdout");
}

export async function resolveConfig(o: Flags): Promise<{ cfg: RunConfig; resume: boolean }> {
  if (typeof o.resume === "string") {
    let saved: Record<string, unknown>;
    try {
      saved = JSON.parse(await Deno.readTextFile(`${o.resume}/config.json`));
    } catch (e) {
      throw new UsageError(
        `--resume: ${o.resume}/config.json is not readable (${(e as Error).message})`,
      );
    }
    delete saved.modelConfig;
    return { cfg: validateConfig({ ...DEFAULT_RUN, ...saved, out: o.resume }), resume: true };
  }
  let base: Record<string, unknown> = { ...DEFAULT_RUN };
  let fromFile: Record<string, unknown> = {};
  if (typeof o.config === "string") {
    try {
      const parsed = JSON.parse(await Deno.readTextFile(o.config));
      if (parsed && typeof parsed === "object") fromFile = parsed;
      base = { ...base, ...parsed };
    } catch (e) {
      throw new UsageError(
        `--config: ${o.config} is not a readable JSON file (${(e as Error).message})`,
      );
    }
  }
  for (const [flag, field, parse] of FIELDS) {
    const key = flag.split(" ")[0].slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const v = o[key];
    if (typeof v === "string") base[field] = parse(v);
  }
  // PoseConv3D flips heatmaps; MotionBERT's keypoint recipe does not flip.
  if (o.flip === undefined && !("flip" in fromFile) && base.input !== "heatmap") base.flip = 0;
  if (o.nesterov !== undefined) base.nesterov = o.nesterov;
  if (o.flipTest) base.flipTest = true;
  if (o.viewAlign) base.viewAlign = true;
  if (o.bones) base.bones = true;
  if (o.motion) base.motion = true;
  if (o.f16) base.f16 = true;
  if (base.out === DEFAULT_RUN.out) {
    base.out = `runs/${base.model}-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  }
  try {
    return { cfg: validateConfig(base), resume: false };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export async function trainCommand(o: Flags): Promise<void> {
  const { cfg, resume } = await resolveConfig(o);
  const rt = await Runtime.create();
  const tty = Deno.stderr.isTerminal();
  let stop = false;
  const onInt = () => {
    if (stop) Deno.exit(130);
    stop = true;
    console.error("\nstopping after this step (Ctrl-C again to quit at once)");
  };
  Deno.addSignalListener("SIGINT", onInt);
  const t0 = performance.now();
  try {
    const summary = await train(rt, cfg, resume, {
      log: (l) => console.error(tty ? `\r\x1b[K${l}` : l),
      progress: tty
        ? (epoch, done, total, sps) => {
          const w = 24, f = Math.round((done / total) * w);
          const eta = ((total - done) * (performance.now() - t0) / Math.max(1, done)) / 1000;
          Deno.stderr.writeSync(new TextEncoder().encode(
            `\r\x1b[Kepoch ${epoch + 1}/${cfg.epochs} [${"#".repeat(f)}${
              ".".repeat(w - f)
            }] ${done}/${total} ${sps.toFixed(0)} samples/s ETA ${eta.toFixed(0)}s`,
          ));
        }
        : undefined,
      shouldStop: () => stop,
    });
    if (o.json) printJson(summary);
    else {
      console.log(
        `${summary.run}: ${summary.model}, best val top-1 ${
          (summary.bestValAccuracy * 100).toFixed(1)
        }% (epoch ${summary.bestEpoch}); final top-1 ${
          (summary.final.top1 * 100).toFixed(1)
        }%, top-5 ${(summary.final.top5 * 100).toFixed(1)}% in ${summary.seconds.toFixed(0)} s`,
      );
    }
    if (summary.interrupted) Deno.exit(130);
  } catch (e) {
    if (e instanceof TrainingStopped) throw e;
    throw e;
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
  }
}
