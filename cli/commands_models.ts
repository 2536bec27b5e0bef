// The commands that train and use models: info, demo, train, eval, predict, models, recipes.
import type { Command } from "commander";
import { demoCommand } from "./demo.ts";
import { evalCommand } from "./eval.ts";
import { infoCommand } from "./info.ts";
import { modelsCommand } from "./models.ts";
import { runCommand } from "./output.ts";
import { predictCommand } from "./predict.ts";
import { exportMotionbert, importMotionbert } from "./motionbert.ts";
import { recipesCommand } from "./recipes.ts";
import { addTrainOptions, PRETRAIN_LAYER, trainCommand } from "./train.ts";
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

  addTrainOptions(
    program.command("pretrain").description(
      "pretrain a DSTformer encoder with MotionBERT's task on 3D skeletons (noisy, masked 2D " +
        "in, 3D motion out); fine-tune it with train --init RUN",
    ),
  ).action((o) => runCommand(() => trainCommand(o, [PRETRAIN_LAYER]), o));

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
        "Arrow files (every sample, or --split), or single sequences: .npy arrays, Kinetics-skeleton JSON files, OpenPose clip folders, videos or live FFmpeg inputs (poses by MoveNet, one prediction per window, printed as each window ends)",
      ),
  )
    .option(
      "--raw",
      ".npy of (N, M, T, V, 3) fed to a keypoint model as it is (no pipeline): logits",
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
      "--input-format <fmt>",
      "every input is an FFmpeg input of this format, read live (v4l2 /dev/video0, lavfi testsrc); " +
        "stdin (-), URLs, named pipes and devices are read live without it",
    )
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

  program.command("import")
    .description("a pretrained model from another framework as a heatformer run folder")
    .command("motionbert")
    .description("MotionBERT's official PyTorch checkpoint (pretraining or action) as a run folder")
    .argument("<checkpoint>", "a torch.save file (.bin / .pth / .pt; zip or legacy format)")
    .requiredOption("-o, --out <dir>", "the run folder to write")
    .option(
      "--heads <n>",
      "attention heads (no shape carries them; 8 in every official model)",
      "8",
    )
    .option("--classes <n|file|ntu60>", "a pretraining checkpoint's head: classes or their names")
    .option("--frames <n>", "frames per clip (at most the checkpoint's 243)")
    .option("--force", "replace an existing run folder's files")
    .option("--json", "print one JSON object: the architecture, missing / unexpected keys")
    .action((ckpt, o) => runCommand(() => importMotionbert(ckpt, o), o));

  program.command("export")
    .description("a heatformer model in another framework's format")
    .command("motionbert")
    .description("a keypoint DSTformer as MotionBERT's official ActionNet state_dict (torch.load)")
    .argument("<run-or-checkpoint>", "a run folder or a .safetensors checkpoint")
    .requiredOption("-o, --out <file.pt>", "the PyTorch file to write")
    .option("--force", "replace an existing file")
    .option("--json", "print one JSON object")
    .action((target, o) => runCommand(() => exportMotionbert(target, o), o));
}
