// Everything a run's flags can get wrong, checked before a runtime or a model exists: the
// preset, the split, the heads against the width, the input against the data. A mistake in
// the flags is a UsageError (exit 2) naming the flag; a problem of the data file names it.
import { bodyFrameJoints, layoutByName } from "../data/layouts.ts";
import type { SkeletonFile } from "../data/schema.ts";
import { PROTOCOL_DATASETS, splitNames } from "../data/protocols.ts";
import { ConfigError, type Experiment } from "./experiment.ts";

export { ConfigError };

/** Checks that need no data: the split names (the schema checked the leaves and across them). */
export function checkFlags(cfg: Experiment): void {
  try {
    splitNames(cfg.data.split);
  } catch (e) {
    throw new ConfigError(`data.split: ${(e as Error).message}`);
  }
  if (cfg.run.objective === "motion3d") {
    const wrong = cfg.model.family !== "motionbert"
      ? `the model is ${cfg.model.family}; MotionBERT's task needs its DSTformer (motionbert-*)`
      : cfg.input.kind !== "kp2d"
      ? `the input is ${cfg.input.kind}; the task's input is a 2D view (kp2d)`
      : cfg.input.persons !== 1
      ? `input.persons is ${cfg.input.persons}; the task learns one person's motion (1)`
      : null;
    if (wrong) throw new ConfigError(`run.objective motion3d: ${wrong}`);
  }
}

/** Checks against the data file: its splits, and whether it has what the input needs. */
export function checkData(cfg: Experiment, file: SkeletonFile): void {
  const splits = Object.keys(file.index.splits);
  const owner = PROTOCOL_DATASETS[cfg.data.split];
  if (owner && !owner.test(file.meta.dataset)) {
    throw new ConfigError(
      `--split ${cfg.data.split}: ${file.path} is a "${file.meta.dataset}" dataset; name its splits ` +
        `as TRAIN:VAL (it has: ${splits.join(", ") || "none"})`,
    );
  }
  for (const s of splitNames(cfg.data.split).flatMap((n) => n.split("+"))) {
    if (!file.index.splits[s]) {
      throw new ConfigError(
        `--split ${cfg.data.split}: ${file.path} has no split "${s}" (it has: ${
          splits.join(", ") || "none"
        })`,
      );
    }
  }
  if (cfg.run.objective === "motion3d" && file.meta.channels !== 3) {
    throw new ConfigError(
      `run.objective motion3d: ${file.path} holds 2D keypoints; the task learns from 3D ones`,
    );
  }
  if (cfg.input.kind === "kp3d" && file.meta.channels !== 3) {
    throw new ConfigError(
      `--input kp3d: ${file.path} holds ${file.meta.channels}D keypoints (use kp2d or heatmap)`,
    );
  }
  const layout = layoutByName(file.meta.layout);
  if (cfg.input.viewAlign && !bodyFrameJoints(layout)) {
    throw new ConfigError(
      `--view-align: the layout ${layout.name} of ${file.path} declares no body frame (joints ` +
        "named left/right_shoulder and left/right_hip, or a bodyFrame entry in its layout file)",
    );
  }
  if (cfg.input.viewAlign && (cfg.input.kind === "kp2d" || file.meta.channels !== 3)) {
    throw new ConfigError(
      `--view-align: turns 3D skeletons (kp3d or heatmap input on 3D data); ${file.path} holds ` +
        `${file.meta.channels}D keypoints and the input is ${cfg.input.kind}`,
    );
  }
}
