// Videos' poses as a skeleton dataset: each finished video (a line of the progress sidecar)
// becomes one sample in the coco17 layout, keypoints in image pixels with their scores and the
// image size; `extra.videos` in the schema metadata gives each sample's source file, frame rate
// and first frame's time (frame t is at start + t / fps seconds) and the pose model.
import type { VideoItem } from "./video_folders.ts";
import type { VideoPoses } from "./video_poses.ts";
import {
  type DoneVideo,
  fromBase64,
  type ProgressLine,
  progressLines,
  toBase64,
} from "./video_progress.ts";
import {
  type DatasetMeta,
  type SkeletonRecord,
  type WriteReport,
  writeSkeletonArrow,
} from "./schema.ts";

/** What `extra.videos` holds for a sample. */
export interface VideoSource {
  file: string;
  fps: number;
  start: number;
  width: number;
  height: number;
  /** people tracked in the video before the most present were kept */
  tracks: number;
}

/** A finished video as a sidecar line. */
export function doneLine(item: VideoItem, v: VideoPoses): DoneVideo {
  return {
    name: item.name,
    file: item.path,
    className: item.className,
    split: item.split,
    fps: v.fps,
    start: v.start,
    frames: v.frames,
    persons: v.persons,
    tracks: v.tracks,
    width: v.info.width,
    height: v.info.height,
    keypoint: toBase64(v.keypoint),
    score: toBase64(v.score),
  };
}

/** A sidecar line as a sample. */
export function videoRecord(d: DoneVideo, classes: string[]): SkeletonRecord {
  return {
    name: d.name,
    label: classes.indexOf(d.className),
    subject: 0,
    camera: 0,
    setup: 0,
    replication: 0,
    frames: d.frames,
    persons: d.persons,
    keypoint: fromBase64(d.keypoint),
    score: fromBase64(d.score),
    keypoint2d: null,
    imgShape: [d.height, d.width],
    splits: [d.split],
  };
}

export interface VideoDatasetOptions {
  dataset: string;
  classes: string[];
  /** e.g. "movenet-lightning on wasm" */
  model: string;
}

/** Writes the sidecar's videos as an Arrow file (atomically), their sources in the metadata. */
export async function writeVideoDataset(
  out: string,
  sidecar: string,
  o: VideoDatasetOptions,
): Promise<WriteReport> {
  const sources: Record<string, VideoSource> = {};
  const extra: Record<string, string> = {};
  const meta: DatasetMeta = {
    dataset: o.dataset,
    layout: "coco17",
    channels: 2,
    classes: o.classes,
    keypointDtype: "f32",
    batchSize: 64,
    extra,
  };
  async function* records(): AsyncGenerator<SkeletonRecord | { skip: string; reason: string }> {
    for await (const l of progressLines(sidecar) as AsyncGenerator<ProgressLine>) {
      if ("skip" in l) {
        yield l;
        continue;
      }
      const { file, fps, start, width, height, tracks } = l;
      sources[l.name] = { file, fps, start, width, height, tracks };
      yield videoRecord(l, o.classes);
    }
    extra.videos = JSON.stringify({ model: o.model, sources });
  }
  return await writeSkeletonArrow(out, meta, records(), sidecar);
}
