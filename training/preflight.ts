// Everything a run's flags can get wrong, checked before a runtime or a model exists: the
// preset, the split, the heads against the width, the input against the data. A mistake in
// the flags is a UsageError (exit 2) naming the flag; a problem of the data file names it.
import { bodyFrameJoints, layoutByName } from "../data/layouts.ts";
import type { SkeletonFile } from "../data/schema.ts";
import { presetByName } from "../models/presets.ts";
import { PROTOCOL_DATASETS, type RunConfig, splitNames } from "./config.ts";

/** A mistake in the flags (or config file): exit 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Checks that need no data. */
export function checkFlags(cfg: RunConfig): void {
  let preset;
  try {
    preset = presetByName(cfg.model).config;
  } catch (e) {
    throw new ConfigError(`--model: ${(e as Error).message}`);
  }
  try {
    splitNames(cfg.split);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const width = cfg.width ?? preset.width, heads = cfg.heads ?? preset.heads;
  if (width % heads) throw new ConfigError(`--heads: ${heads} does not divide the width ${width}`);
  if (preset.family.startsWith("vivit") && cfg.input !== "heatmap") {
    throw new ConfigError(`--input: ${cfg.model} takes heatmaps (tubelets), not ${cfg.input}`);
  }
}

/** Checks against the data file: its splits, and whether it has what the input needs. */
export function checkData(cfg: RunConfig, file: SkeletonFile): void {
  const splits = Object.keys(file.index.splits);
  const owner = PROTOCOL_DATASETS[cfg.split];
  if (owner && !owner.test(file.meta.dataset)) {
    throw new ConfigError(
      `--split ${cfg.split}: ${file.path} is a "${file.meta.dataset}" dataset; name its splits ` +
        `as TRAIN:VAL (it has: ${splits.join(", ") || "none"})`,
    );
  }
  for (const s of splitNames(cfg.split)) {
    if (!file.index.splits[s]) {
      throw new ConfigError(
        `--split ${cfg.split}: ${file.path} has no split "${s}" (it has: ${
          splits.join(", ") || "none"
        })`,
      );
    }
  }
  if (cfg.input === "kp3d" && file.meta.channels !== 3) {
    throw new ConfigError(
      `--input kp3d: ${file.path} holds ${file.meta.channels}D keypoints (use kp2d or heatmap)`,
    );
  }
  const layout = layoutByName(file.meta.layout);
  if (cfg.viewAlign && !bodyFrameJoints(layout)) {
    throw new ConfigError(
      `--view-align: the layout ${layout.name} of ${file.path} declares no body frame (joints ` +
        "named left/right_shoulder and left/right_hip, or a bodyFrame entry in its layout file)",
    );
  }
  if (cfg.viewAlign && (cfg.input === "kp2d" || file.meta.channels !== 3)) {
    throw new ConfigError(
      `--view-align: turns 3D skeletons (kp3d or heatmap input on 3D data); ${file.path} holds ` +
        `${file.meta.channels}D keypoints and the input is ${cfg.input}`,
    );
  }
}
