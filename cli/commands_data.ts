// The commands on data and results: convert, poses, inspect, render, report.
import type { Command } from "commander";
import { convertCommand, inspectCommand, renderCommand } from "./data.ts";
import { runCommand } from "./output.ts";
import { posesCommand } from "./poses.ts";
import { renderVideoCommand } from "./render_video.ts";
import { reportCommand } from "./report.ts";

/** The flags of the pose estimator and the decoding (poses, and predict on videos). */
export function addPoseOptions(c: Command): Command {
  return c
    .option(
      "--model <name>",
      "pose model: lightning | thunder (one person) | multipose",
      "lightning",
    )
    .option("--backend <name>", "TF.js backend: auto | webgpu | wasm | cpu", "auto")
    .option("--fps <n>", "resample the videos to n frames per second (default: their own)")
    .option("--start <s>", "seconds: start each video there")
    .option("--end <s>", "seconds: stop each video there")
    .option("--max-persons <n>", "people kept per video: the most present tracks", "2");
}

/** convert, poses, inspect, render, report. */
export function addDataCommands(program: Command): void {
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

  addPoseOptions(
    program.command("poses")
      .description("2D poses of videos (MoveNet, tracked) as a coco17 skeleton dataset; resumable")
      .argument(
        "<videos...>",
        "video files, or folders of class folders (CLASS/clip.mp4, as UCF101)",
      ),
  )
    .requiredOption("-o, --out <file.arrow>", "output Arrow IPC file")
    .option("--skip-bad", "skip videos that cannot be decoded (default: stop, naming the file)")
    .option("--force", "replace an existing output file (never an input)")
    .option("--json", "print one JSON summary object")
    .action((videos, o) => runCommand(() => posesCommand(videos, o), o));

  program.command("inspect")
    .description("counts per split and class, frames, persons, layout, anything suspicious")
    .argument("<file>", "an Arrow skeleton file")
    .option("--json", "print one JSON object")
    .action((file, o) => runCommand(() => inspectCommand(file, o), o));

  addPoseOptions(
    program.command("render")
      .description(
        "a sample's heatmap volume (test-time pipeline) as a labelled contact sheet or a .npy; " +
          "with --video, a video's tracked skeletons over its frames (a sheet, or a video)",
      )
      .argument("[file]", "an Arrow skeleton file (with --video: a `poses` dataset, optional)"),
  )
    .option("--sample <name>", "sample name (with --video: default the one made from the video)")
    .requiredOption(
      "-o, --out <path>",
      "out.png or out.npy (N x C x T x H x W float32); with --video: sheet.png or out.mp4",
    )
    .option("--clip <k>", "test clip index", "0")
    .option("--clips <n>", "test clips", "10")
    .option("--clip-len <n>", "frames per clip", "48")
    .option("--size <n>", "heatmap side", "56")
    .option("--sigma <s>", "Gaussian sigma", "0.6")
    .option("--heatmap <kind>", "joint | limb | both", "joint")
    .option(
      "--video <file>",
      "draw the tracked people over this video's frames: from FILE's sample, else estimated here " +
        "(the pose flags)",
    )
    .option("--frames <n>", "--video to a .png: frames in the sheet, evenly spaced", "12")
    .option("--width <px>", "--video to a .png: pixels across a frame in the sheet", "384")
    .option("--force", "replace existing output files (never the input)")
    .option("--json", "print one JSON object")
    .action((file, o) =>
      runCommand(() => o.video ? renderVideoCommand(file, o) : renderCommand(file, o), o)
    );

  program.command("report")
    .description("one self-contained HTML page comparing runs: table, curves, config differences")
    .argument("<runs...>", "run folders")
    .option("-o, --out <file.html>", "where to write it", "report.html")
    .option("--force", "replace an existing file (never a run's own files)")
    .option("--json", "print one JSON object")
    .action((runs, o) => runCommand(() => reportCommand(runs, o), o));
}
