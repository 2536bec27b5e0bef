// `heatformer poses VIDEO... -o poses.arrow [--model lightning|thunder|multipose] [--fps N]
// [--max-persons 2] [--json]`: 2D poses of videos (files, or folders of class folders as
// UCF101) as a coco17 skeleton dataset. Resumable: finished videos are kept in
// OUT.progress.jsonl as they end, and a rerun skips them.
import { basename, resolve } from "node:path";
import { createMoveNet } from "../data/pose/movenet.ts";
import { MOVENET_MODELS, type MoveNetModel } from "../data/pose/model_files.ts";
import type { PoseEstimator } from "../data/pose/estimator.ts";
import { TF_BACKENDS, type TfBackend } from "../data/pose/worker_protocol.ts";
import { DataError } from "../data/schema.ts";
import { doneLine, writeVideoDataset } from "../data/video_dataset.ts";
import { classesOf, listVideos, type VideoItem } from "../data/video_folders.ts";
import { type VideoPoseOptions, videoPoses } from "../data/video_poses.ts";
import { probeVideo } from "../data/video.ts";
import { PosesProgress, type ProgressHeader } from "../data/video_progress.ts";
import { positiveInt, printJson, UsageError } from "./output.ts";
import { checkOutputs, checkWritable } from "./writes.ts";

export interface PoseFlags {
  model: string;
  backend: string;
  fps?: string;
  start?: string;
  end?: string;
  maxPersons: string;
}

export interface PosesFlags extends PoseFlags {
  out: string;
  skipBad?: boolean;
  force?: boolean;
  json?: boolean;
}

/** A number of seconds (or frames per second) > 0, or >= 0 where `zero` allows it. */
function seconds(flag: string, v: string | undefined, zero = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v.replace(/s$/, ""));
  if (!Number.isFinite(n) || n < 0 || (!zero && n === 0)) {
    throw new UsageError(`${flag}: a number of seconds${zero ? " >= 0" : " > 0"}, got "${v}"`);
  }
  return n;
}

/** The decode and tracking options of the pose flags, checked. */
export function poseOptions(o: PoseFlags): VideoPoseOptions & { model: MoveNetModel } {
  if (!MOVENET_MODELS.includes(o.model as MoveNetModel)) {
    throw new UsageError(`--model: one of ${MOVENET_MODELS.join(", ")}, got "${o.model}"`);
  }
  if (!TF_BACKENDS.includes(o.backend as TfBackend)) {
    throw new UsageError(`--backend: one of ${TF_BACKENDS.join(", ")}, got "${o.backend}"`);
  }
  const fps = seconds("--fps", o.fps), start = seconds("--start", o.start, true);
  const end = seconds("--end", o.end);
  if (end !== undefined && end <= (start ?? 0)) throw new UsageError("--end: after --start");
  const maxPersons = positiveInt("--max-persons", o.maxPersons);
  return { model: o.model as MoveNetModel, fps, start, end, maxPersons };
}

/** The pose estimator of the flags; its download and backend reported on stderr. */
export async function poseEstimator(o: PoseFlags, quiet: boolean): Promise<PoseEstimator> {
  const log = (l: string) => quiet || console.error(l);
  const est = await createMoveNet(o.model as MoveNetModel, o.backend as TfBackend | "auto", log);
  log(`poses: ${est.name} on TF.js ${est.backend}`);
  return est;
}

/** Estimates each video not yet in the sidecar, appending it there as it ends. */
async function estimateAll(
  todo: VideoItem[],
  progress: PosesProgress,
  o: PosesFlags,
  opts: VideoPoseOptions,
): Promise<{ frames: number; seconds: number; backend: string }> {
  let est: PoseEstimator | null = null, frames = 0, t0 = 0;
  try {
    for (const [i, item] of todo.entries()) {
      try {
        const info = await probeVideo(item.path);
        // loaded once the first video is known to be one (a bad input fails without it)
        if (!est) (est = await poseEstimator(o, !!o.json)), (t0 = performance.now());
        const v = await videoPoses(info, est, opts);
        await progress.add(doneLine(item, v));
        frames += v.frames;
        if (!o.json) {
          console.error(
            `[${i + 1}/${todo.length}] ${item.name}: ${v.frames} frames, ` +
              `${v.persons} of ${v.tracks} people kept`,
          );
        }
      } catch (e) {
        if (!(e instanceof DataError) || !o.skipBad) throw e;
        await progress.add({ skip: item.name, reason: e.message });
        if (!o.json) console.error(`warning: skipped ${e.message}`);
      }
    }
  } finally {
    est?.dispose();
  }
  const seconds = est ? (performance.now() - t0) / 1000 : 0;
  return { frames, seconds, backend: est?.backend ?? "none" };
}

export async function posesCommand(inputs: string[], o: PosesFlags): Promise<void> {
  const opts = poseOptions(o);
  if (!o.out.endsWith(".arrow")) throw new UsageError(`--out: a .arrow path, got "${o.out}"`);
  const items = await listVideos(inputs);
  await checkOutputs({
    outputs: [o.out],
    inputs: items.map((i) => i.path),
    force: o.force,
    flag: "--out",
  });
  await checkWritable(o.out);
  const header: ProgressHeader = {
    model: `movenet-${opts.model}`,
    fps: opts.fps ?? null,
    start: opts.start ?? null,
    end: opts.end ?? null,
    maxPersons: opts.maxPersons,
  };
  const progress = await PosesProgress.open(o.out, header);
  const resumed = progress.done.size;
  const todo = items.filter((i) => !progress.done.has(i.name));
  let run;
  try {
    run = await estimateAll(todo, progress, o, opts);
  } catch (e) {
    // nothing half-done stays: the sidecar goes unless it holds finished videos to resume from
    if (progress.done.size === 0) await progress.remove();
    else {
      await progress.close();
      if (!o.json) {
        console.error(`${progress.done.size} videos kept in ${progress.path}: rerun to resume`);
      }
    }
    throw e;
  }
  await progress.close();
  const classes = classesOf(items);
  const dataset = inputs.length === 1 ? basename(resolve(inputs[0])) : "videos";
  const report = await writeVideoDataset(o.out, progress.path, {
    dataset,
    classes,
    model: header.model,
  });
  await progress.remove();
  const summary = {
    out: o.out,
    videos: items.length,
    written: report.written,
    skipped: report.skipped,
    resumed,
    classes,
    model: header.model,
    backend: run.backend,
    frames: run.frames,
    framesPerSecond: run.seconds > 0 ? run.frames / run.seconds : null,
  };
  if (o.json) return printJson(summary);
  console.log(
    `${o.out}: ${report.written} videos, ${classes.length} classes` +
      (report.skipped.length ? `, ${report.skipped.length} skipped` : "") +
      (run.frames
        ? ` (${run.frames} frames at ${summary.framesPerSecond!.toFixed(1)} frames/s)`
        : ""),
  );
}
