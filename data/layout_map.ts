// Conversions between joint layouts, as values: each joint of the target layout is the mean of
// named joints of the source (x, y[, z] and score alike). COCO-17 -> Human3.6M-17 is
// MotionBERT's coco2h36m (its action pipeline feeds COCO poses to an H36M-order model: the
// pelvis and neck are the hip and shoulder midpoints, the spine ("belly") their midpoint, the
// head the eyes' midpoint); the Kinect layouts map onto H36M the same way, so 3D Kinect data
// can pretrain an encoder that 2D COCO data then fine-tunes.
import { type JointLayout, layoutByName } from "./layouts.ts";
import type { SkeletonRecord } from "./schema.ts";

/** Target joint name -> the source joint names it averages. */
type JointSources = Readonly<Record<string, readonly string[]>>;

/** H36M joints that every source layout has under the same name. */
const H36M_LIMBS: JointSources = {
  right_hip: ["right_hip"],
  right_knee: ["right_knee"],
  right_ankle: ["right_ankle"],
  left_hip: ["left_hip"],
  left_knee: ["left_knee"],
  left_ankle: ["left_ankle"],
  left_shoulder: ["left_shoulder"],
  left_elbow: ["left_elbow"],
  left_wrist: ["left_wrist"],
  right_shoulder: ["right_shoulder"],
  right_elbow: ["right_elbow"],
  right_wrist: ["right_wrist"],
};

const HIPS = ["left_hip", "right_hip"], SHOULDERS = ["left_shoulder", "right_shoulder"];

/** The conversions known, by "source>target". */
const LAYOUT_MAPS: Readonly<Record<string, JointSources>> = {
  "coco17>h36m17": {
    ...H36M_LIMBS,
    pelvis: HIPS,
    spine: [...HIPS, ...SHOULDERS],
    neck: SHOULDERS,
    nose: ["nose"],
    head: ["left_eye", "right_eye"],
  },
  // Kinect v1 has no face joints: its head stands for both the nose and the head.
  "kinect20>h36m17": {
    ...H36M_LIMBS,
    pelvis: ["hip_center"],
    spine: ["spine"],
    neck: ["shoulder_center"],
    nose: ["head"],
    head: ["head"],
  },
  "ntu25>h36m17": {
    ...H36M_LIMBS,
    pelvis: ["spine_base"],
    spine: ["spine_mid"],
    neck: ["spine_shoulder"],
    nose: ["head"],
    head: ["head"],
  },
};

/** A conversion as source joint indices per target joint. */
export interface LayoutMap {
  from: JointLayout;
  to: JointLayout;
  sources: readonly (readonly number[])[];
}

/** The layouts `from` converts to (empty when none). */
export function layoutTargets(from: string): string[] {
  return Object.keys(LAYOUT_MAPS).filter((k) => k.startsWith(`${from}>`)).map((k) =>
    k.split(">")[1]
  );
}

/** Whether data of layout `from` converts to layout `to`. */
export function converts(from: string, to: string): boolean {
  return `${from}>${to}` in LAYOUT_MAPS;
}

/** The conversion from one layout to another; null when they are the same layout. */
export function layoutMap(from: string, to: string): LayoutMap | null {
  if (from === to) return null;
  const names = LAYOUT_MAPS[`${from}>${to}`];
  if (!names) {
    const known = layoutTargets(from);
    throw new Error(
      `no conversion from the ${from} layout to ${to} (${from} converts to: ${
        known.join(", ") || "nothing"
      })`,
    );
  }
  const src = layoutByName(from), dst = layoutByName(to);
  const index = (n: string) => {
    const i = src.joints.indexOf(n);
    if (i < 0) throw new Error(`layout map ${from}>${to}: ${from} has no joint ${n}`);
    return i;
  };
  return { from: src, to: dst, sources: dst.joints.map((j) => names[j].map(index)) };
}

/** Checks that scores can stay in the source's order (as many joints on both sides). */
export function checkScoreOrder(m: LayoutMap | null, scores: ScoreOrder): void {
  if (m && scores === "source" && m.from.joints.length !== m.to.joints.length) {
    throw new Error(
      `scores in the source order: ${m.from.name} has ${m.from.joints.length} joints, ` +
        `${m.to.name} ${m.to.joints.length}`,
    );
  }
}

/** Means of source joints over rows of (..., V, C) values: the target's (..., V', C). */
function mapRows(x: Float32Array, channels: number, m: LayoutMap): Float32Array {
  const v = m.from.joints.length, w = m.to.joints.length, rows = x.length / (v * channels);
  const out = new Float32Array(rows * w * channels);
  for (let r = 0; r < rows; r++) {
    m.sources.forEach((src, j) => {
      for (let c = 0; c < channels; c++) {
        let s = 0;
        for (const k of src) s += x[(r * v + k) * channels + c];
        out[(r * w + j) * channels + c] = s / src.length;
      }
    });
  }
  return out;
}

/**
 * How scores convert: "mapped", each target joint's score the mean of its sources' (like the
 * coordinates); "source", the scores left in the source's joint order, as MotionBERT's action
 * pipeline does (it appends COCO's scores after coco2h36m: H36M joint j carries COCO joint j's
 * score), which its released action checkpoints were trained on.
 */
export type ScoreOrder = "mapped" | "source";

/** A record in the target layout (keypoints, scores and 2D keypoints alike). */
export function mapRecord(
  r: SkeletonRecord,
  channels: number,
  m: LayoutMap,
  scores: ScoreOrder = "mapped",
): SkeletonRecord {
  return {
    ...r,
    keypoint: mapRows(r.keypoint, channels, m),
    score: r.score && (scores === "source" ? r.score : mapRows(r.score, 1, m)),
    keypoint2d: r.keypoint2d && mapRows(r.keypoint2d, 2, m),
  };
}
