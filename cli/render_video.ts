// `heatformer render [POSES.arrow] --video clip.mp4 -o sheet.png | out.mp4`: the tracked people
// of a video drawn over its frames (data/render_video.ts), their poses from a `heatformer poses`
// dataset (the sample made from that video, or --sample) or estimated here with the pose flags.
// The output is written under a temporary name beside it, then renamed into place.
import { basename, dirname, extname, join } from "node:path";
import { SkeletonFile } from "../data/schema.ts";
import { DataError } from "../data/schema.ts";
import { type TrackedPoses, writeSheet, writeVideo } from "../data/render_video.ts";
import type { VideoSource } from "../data/video_dataset.ts";
import { isVideoFile } from "../data/video_folders.ts";
import { videoPoses } from "../data/video_poses.ts";
import { probeVideo, type VideoInfo } from "../data/video.ts";
import { writeError } from "../io/atomic.ts";
import { positiveInt, printJson, UsageError } from "./output.ts";
import { poseEstimator, type PoseFlags, poseOptions } from "./poses.ts";
import { checkOutputs, checkWritable, realPath } from "./writes.ts";

export interface VideoRenderFlags extends PoseFlags {
  video: string;
  out: string;
  sample?: string;
  frames: string;
  width: string;
  force?: boolean;
  json?: boolean;
}

/** The sample whose source is `video` (the same file, whatever the path), if any. */
async function sampleOf(sources: Record<string, VideoSource>, video: string) {
  const real = await realPath(video);
  for (const [name, s] of Object.entries(sources)) if (await realPath(s.file) === real) return name;
  return undefined;
}

/**
 * A poses dataset's sample of the video: --sample, else the one whose source file is the video;
 * refused where the dataset does not record its source or its size is not the video's.
 */
async function datasetPoses(
  path: string,
  sample: string | undefined,
  info: VideoInfo,
): Promise<TrackedPoses> {
  const f = await SkeletonFile.open(path);
  try {
    const extra = f.meta.extra?.videos;
    if (!extra) {
      throw new DataError(path, null, "not made by `heatformer poses` (no video sources)");
    }
    const sources: Record<string, VideoSource> = JSON.parse(extra).sources;
    const name = sample ?? await sampleOf(sources, info.path);
    if (!name) {
      throw new UsageError(`${path}: no sample made from ${info.path}; name one with --sample`);
    }
    const i = f.index.names.indexOf(name), src = sources[name];
    if (i < 0 || !src) throw new DataError(path, name, "no sample of that name made from a video");
    if (src.width !== info.width || src.height !== info.height) {
      throw new DataError(
        path,
        name,
        `poses of a ${src.width} x ${src.height} video, ${info.path} is ${info.width} x ${info.height}`,
      );
    }
    const r = await f.read(i);
    return { ...src, frames: r.frames, persons: r.persons, keypoint: r.keypoint, score: r.score! };
  } finally {
    await f.close();
  }
}

/** The video's people estimated and tracked here, with the pose flags. */
async function estimatedPoses(info: VideoInfo, o: VideoRenderFlags): Promise<TrackedPoses> {
  const opts = poseOptions(o), est = await poseEstimator(o, !!o.json);
  try {
    return await videoPoses(info, est, opts);
  } finally {
    est.dispose();
  }
}

export async function renderVideoCommand(file: string | undefined, o: VideoRenderFlags) {
  const ext = extname(o.out), sheet = ext.toLowerCase() === ".png";
  if (!sheet && !isVideoFile(o.out)) {
    throw new UsageError(
      `--out: a .png (a sheet of frames) or a video (.mp4, .mkv, ...), got "${o.out}"`,
    );
  }
  const tiles = positiveInt("--frames", o.frames), width = positiveInt("--width", o.width);
  if (!file) poseOptions(o);
  await checkOutputs({ outputs: [o.out], inputs: [file, o.video], force: o.force, flag: "--out" });
  await checkWritable(o.out);
  const info = await probeVideo(o.video);
  const poses = file ? await datasetPoses(file, o.sample, info) : await estimatedPoses(info, o);
  const tmp = join(dirname(o.out), `.${basename(o.out, ext)}.${Deno.pid}.tmp${ext}`);
  try {
    const drawn = sheet
      ? (await writeSheet(info, poses, tmp, { tiles, width })).frames.length
      : await writeVideo(info, poses, tmp);
    await Deno.rename(tmp, o.out).catch((e) => {
      throw writeError(o.out, e);
    });
    const summary = { out: o.out, frames: drawn, of: poses.frames, persons: poses.persons };
    if (o.json) return printJson(summary);
    console.log(`wrote ${o.out} (${drawn} of ${poses.frames} frames, ${poses.persons} people)`);
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}
