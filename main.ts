#!/usr/bin/env -S deno run -A
// heatformer: transformers on 3D heatmap volumes for skeleton action recognition, on WebGPU.
// One entry for every subcommand; `heatformer --help` lists them.
import { Command, CommanderError } from "commander";
import { convertCommand, inspectCommand, renderCommand } from "./cli/data.ts";
import { demoCommand } from "./cli/demo.ts";
import { evalCommand } from "./cli/eval.ts";
import { modelsCommand } from "./cli/models.ts";
import { recipesCommand } from "./cli/recipes.ts";
import { reportCommand } from "./cli/report.ts";
import { predictCommand } from "./cli/predict.ts";
import { addTrainOptions, trainCommand } from "./cli/train.ts";
import { addSweepCommands } from "./cli/sweep.ts";
import { infoCommand } from "./cli/info.ts";
import { errorObject, EXIT, parseIntList, printJson, runCommand } from "./cli/output.ts";
import { Runtime } from "./runtime/runtime.ts";

export const VERSION = "0.1.0";

export function buildCli(): Command {
  const program = new Command("heatformer")
    .version(VERSION)
    .description(
      "Transformers on PoseConv3D heatmap volumes for skeleton action recognition (WebGPU)",
    )
    .showHelpAfterError()
    .exitOverride();

  program.command("info")
    .description("describe the WebGPU adapter (name, backend, features, limits)")
    .option("--json", "print one JSON object")
    .action((o) => runCommand(() => infoCommand(o), o));

  program.command("demo")
    .description("train a small transformer on a procedural motion task (a runtime smoke test)")
    .option("--epochs <n>", "epochs", "8")
    .option("--json", "print one JSON summary object")
    .action((o) => runCommand(() => demoCommand(o), o));

  addTrainOptions(
    program.command("train").description(
      "train a model (default: vanilla-tiny on the built-in dataset)",
    ),
  ).action((o) => runCommand(() => trainCommand(o), o));

  addSweepCommands(program);

  program.command("eval")
    .description("evaluate a run or checkpoint: top-1/5, per-class, confusion (+ PNGs)")
    .argument("<run-or-checkpoint>", "a run folder (its best.safetensors) or a .safetensors file")
    .option("--data <file.arrow>", "dataset (default: the run's)")
    .option(
      "--split <name>",
      "split name(s), comma separated (default: the run's validation split)",
    )
    .option("--clips <n>", "test clips per sample (default: the run's; PoseConv3D: 10)")
    .option("--flip", "add a flipped copy of every clip (PoseConv3D's test)")
    .option("--no-flip", "no flipped copies (default: the run's test protocol)")
    .option(
      "--checkpoint <which>",
      "a run folder's last or best checkpoint (default: the one its final evaluation used)",
    )
    .option(
      "--batch-size <n>",
      "input rows (sample views) per forward pass, fewer where the adapter's binding is smaller",
      "16",
    )
    .option("--out <dir>", "where the PNGs go (default: the run folder)")
    .option("--force", "--out: replace charts already there (never a run's own files)")
    .option(
      "--ensemble <runs>",
      "more runs or checkpoints (comma separated) whose probabilities are averaged with it",
    )
    .option("--json", "print one JSON object")
    .action((target, o) => runCommand(() => evalCommand(target, o), o));

  program.command("predict")
    .description("class names with probabilities for sequences, by a trained run or checkpoint")
    .argument("<run-or-checkpoint>", "a run folder (its best.safetensors) or a .safetensors file")
    .argument(
      "<inputs...>",
      "Arrow files (every sample, or --split), or single sequences: .npy arrays, Kinetics-skeleton JSON files, OpenPose clip folders",
    )
    .option("--split <name>", "Arrow inputs: only this split")
    .option("--top-k <k>", "classes per sequence", "5")
    .option("--clips <n>", "test clips per sequence (default: the run's)")
    .option("--flip", "add mirrored views (default: the run's)")
    .option("--layout <name|file.json>", ".npy inputs: their layout (default: the model's)")
    .option("--batch-size <n>", "input rows (views) per forward pass", "16")
    .option("--json", "one JSON line per sequence: {name, input, top: [{class, label, prob}]}")
    .action((target, inputs, o) => runCommand(() => predictCommand(target, inputs, o), o));

  program.command("models")
    .description("the presets: parameters, GFLOPs per sample, inputs, recipes")
    .option("--json", "print one JSON object")
    .action((o) => runCommand(() => modelsCommand(o), o));

  program.command("recipes")
    .description("the training recipes: optimiser, schedule, length, batch, test protocol")
    .option("--json", "print one JSON object")
    .action((o) => runCommand(() => recipesCommand(o), o));

  program.command("convert")
    .description("import a dataset into heatformer's Arrow format")
    .argument("<format>", "ntu | nw-ucla | synth | pyskl | kinetics-json | openpose | numpy")
    .argument(
      "[input]",
      "a folder (.skeleton, .json, OpenPose clips, Kinetics-skeleton, GCN .npy), a .pkl, .npy or .npz",
    )
    .requiredOption("-o, --out <file.arrow>", "output Arrow IPC file")
    .option(
      "--classes <list>",
      "class names: ntu60 | ntu120 | a file with one name per line (ntu: 60 or 120)",
    )
    .option(
      "--layout <name|file.json>",
      "pyskl: the joint layout (a built-in name or a layout file) where the shape does not tell it",
    )
    .option(
      "--labels <file>",
      "kinetics-json: label JSON; openpose: clip,label[,split] CSV; numpy: .pkl/.npy",
    )
    .option("--split <name>", "kinetics-json / numpy with --labels: the split of the input (train)")
    .option(
      "--max-persons <n>",
      "kinetics-json / openpose: people kept per frame, most confident first",
      "2",
    )
    .option("--missing <list>", "ntu: names to skip (samples_with_missing_skeletons.txt)")
    .option("--seed <n>", "synth: generator seed")
    .option("--subjects <n>", "synth: number of subjects (70% train)")
    .option("--force", "replace an existing output file (never an input)")
    .option("--json", "print one JSON summary object")
    .action((format, input, o) => runCommand(() => convertCommand(format, input, o), o));

  program.command("report")
    .description("one self-contained HTML page comparing runs: table, curves, config differences")
    .argument("<runs...>", "run folders")
    .option("-o, --out <file.html>", "where to write it", "report.html")
    .option("--force", "replace an existing file (never a run's own files)")
    .option("--json", "print one JSON object")
    .action((runs, o) => runCommand(() => reportCommand(runs, o), o));

  program.command("inspect")
    .description("counts per split and class, frames, persons, layout, anything suspicious")
    .argument("<file>", "an Arrow skeleton file")
    .option("--json", "print one JSON object")
    .action((file, o) => runCommand(() => inspectCommand(file, o), o));

  program.command("render")
    .description(
      "a sample's heatmap volume (test-time pipeline) as a labelled contact sheet or a .npy",
    )
    .argument("<file>", "an Arrow skeleton file")
    .requiredOption("--sample <name>", "sample name")
    .requiredOption("-o, --out <path>", "out.png or out.npy (N x C x T x H x W float32)")
    .option("--clip <k>", "test clip index", "0")
    .option("--clips <n>", "test clips", "10")
    .option("--clip-len <n>", "frames per clip", "48")
    .option("--size <n>", "heatmap side", "56")
    .option("--sigma <s>", "Gaussian sigma", "0.6")
    .option("--heatmap <kind>", "joint | limb | both", "joint")
    .option("--force", "replace existing output files (never the input)")
    .option("--json", "print one JSON object")
    .action((file, o) => runCommand(() => renderCommand(file, o), o));

  // bench/ and its peers (TensorFlow.js, jax-js) are imported when a bench command runs: with
  // deno.json's lazy-dynamic-imports and npm-lazy-caching, nothing else downloads them.
  const bench = program.command("bench").description(
    "benchmarks (not tests): GFLOP/s, samples/s, peers",
  );
  bench.command("kernels")
    .description("FMA peak, matmul, attention, tubelet embedding, and TensorFlow.js WebGPU matmul")
    .option("--json", "print one JSON object")
    .option("--sizes <list>", "matmul sizes", "256,512,1024,2048")
    .option("--lengths <list>", "attention sequence lengths", "64,256,1024")
    .option("--no-peers", "skip TensorFlow.js")
    .option("--f16", "f16 storage, f32 accumulation (matmul, attention)")
    .option("--min-ms <ms>", "minimum timed duration per measurement", "300")
    .action((o) =>
      runCommand(async () => {
        const { benchKernels } = await import("./bench/kernels.ts");
        const rt = await Runtime.create();
        const report = await benchKernels(rt, {
          matmulSizes: parseIntList("--sizes", o.sizes),
          attentionLengths: parseIntList("--lengths", o.lengths),
          peers: o.peers,
          f16: !!o.f16,
          minMs: Number(o.minMs),
          log: o.json ? undefined : (l) => console.log(l),
        });
        if (o.json) printJson(report);
        else console.log(`adapter: ${report.adapter.name} (${report.adapter.backend})`);
      }, o)
    );
  bench.command("train")
    .description(
      "training-step time and samples/s: the reference step and each family's tiny preset",
    )
    .option("--json", "print one JSON object")
    .option("--f16", "mixed precision (train --f16) for heatformer's steps")
    .option("--no-peers", "skip the TensorFlow.js and jax-js peers")
    .option("--profile", "time each kernel of the reference step (replayed alone)")
    .option("--no-presets", "only the reference step (and its peers)")
    .option("--models <list>", "presets to time (default: the four *-tiny ones)")
    .option("--batch <n>", "samples per preset step", "16")
    .action((o) =>
      runCommand(async () => {
        const { benchTrain } = await import("./bench/train.ts");
        const rt = await Runtime.create();
        const report = await benchTrain(rt, {
          peers: o.peers,
          profile: !!o.profile,
          presets: o.presets,
          models: o.models ? String(o.models).split(",").map((m) => m.trim()) : undefined,
          batch: parseIntList("--batch", o.batch)[0],
          f16: !!o.f16,
          log: o.json ? undefined : (l) => console.log(l),
        });
        if (o.json) printJson({ adapter: rt.gpu.description, ...report });
      }, o)
    );

  bench.command("data")
    .description("Arrow read rate, host pipeline rate, GPU vs CPU heatmap volumes/s")
    .option("--json", "print one JSON object")
    .option("--batch <n>", "heatmap volumes per GPU dispatch", "8")
    .action((o) =>
      runCommand(async () => {
        const { benchData } = await import("./bench/data.ts");
        const rt = await Runtime.create();
        const report = await benchData(rt, {
          batch: Number(o.batch),
          log: o.json ? undefined : (l) => console.log(l),
        });
        if (o.json) printJson({ adapter: rt.gpu.description, ...report });
      }, o)
    );
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildCli();
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) Deno.exit(EXIT.ok);
      // commander has said it on stderr; a shell loop with --json gets the error object too
      if (argv.includes("--json")) printJson(errorObject(e, EXIT.usage));
      Deno.exit(EXIT.usage);
    }
    throw e;
  }
}

if (import.meta.main) {
  Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp");
  await main(Deno.args);
  // Exit explicitly: a peer library (jax-js's WebAssembly threads) may keep the event loop
  // alive after the command has finished, and a shell loop must not wait on it.
  Deno.exit(EXIT.ok);
}
