// The commands that train and use models: info, demo, train, eval, predict, models, recipes.
import type { Command } from "commander";
import { demoCommand } from "./demo.ts";
import { evalCommand } from "./eval.ts";
import { infoCommand } from "./info.ts";
import { modelsCommand } from "./models.ts";
import { runCommand } from "./output.ts";
import { predictCommand } from "./predict.ts";
import { recipesCommand } from "./recipes.ts";
import { addTrainOptions, trainCommand } from "./train.ts";
import { addPoseOptions } from "./commands_data.ts";

/** info, demo, train, eval, predict, models, recipes. */
export function addModelCommands(program: Command): void {
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

  addPoseOptions(
    program.command("predict")
      .description("class names with probabilities for sequences, by a trained run or checkpoint")
      .argument("<run-or-checkpoint>", "a run folder (its best.safetensors) or a .safetensors file")
      .argument(
        "<inputs...>",
        "Arrow files (every sample, or --split), or single sequences: .npy arrays, Kinetics-skeleton JSON files, OpenPose clip folders, videos (poses by MoveNet, one prediction per window)",
      ),
  )
    .option("--split <name>", "Arrow inputs: only this split")
    .option("--top-k <k>", "classes per sequence", "5")
    .option("--clips <n>", "test clips per sequence (default: the run's)")
    .option("--flip", "add mirrored views (default: the run's)")
    .option("--layout <name|file.json>", ".npy inputs: their layout (default: the model's)")
    .option("--batch-size <n>", "input rows (views) per forward pass", "16")
    .option("--window <duration>", "videos: seconds per prediction (2s, 500ms)", "2s")
    .option("--stride <duration>", "videos: seconds between windows' starts", "1s")
    .option(
      "--json",
      "one JSON line per sequence (video window): {name, input, [start, end,] top: [{class, label, prob}]}",
    )
    .action((target, inputs, o) => runCommand(() => predictCommand(target, inputs, o), o));

  program.command("models")
    .description("the presets: parameters, GFLOPs per sample, inputs, recipes")
    .option("--json", "print one JSON object")
    .action((o) => runCommand(() => modelsCommand(o), o));

  program.command("recipes")
    .description("the training recipes: optimiser, schedule, length, batch, test protocol")
    .option("--json", "print one JSON object")
    .action((o) => runCommand(() => recipesCommand(o), o));
}
