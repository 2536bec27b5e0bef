// `heatformer inspect`: what an Arrow skeleton file holds, and anything suspicious.
import { layoutByName } from "./layouts.ts";
import type { SkeletonFile } from "./schema.ts";

export interface InspectReport {
  file: string;
  dataset: string;
  layout: string;
  joints: number;
  channels: number;
  keypointDtype: string;
  samples: number;
  classes: number;
  /** The class names, in label order. */
  classNames: string[];
  splits: Record<string, { samples: number; perClass: number[] }>;
  frames: { min: number; median: number; max: number };
  persons: Record<string, number>;
  has2d: number;
  warnings: string[];
}

export async function inspectFile(f: SkeletonFile): Promise<InspectReport> {
  const K = f.meta.classes.length;
  const splits: InspectReport["splits"] = {};
  for (const [name, ids] of Object.entries(f.index.splits)) {
    const perClass = new Array(K).fill(0);
    for (const i of ids) perClass[f.index.labels[i]]++;
    splits[name] = { samples: ids.length, perClass };
  }
  const frames: number[] = [], persons: Record<string, number> = {};
  let has2d = 0, allZero = 0, jumps = 0;
  const warnings: string[] = [];
  for (let b = 0; b < f.numBatches; b++) {
    for (const r of await f.readBatch(b)) {
      frames.push(r.frames);
      persons[r.persons] = (persons[r.persons] ?? 0) + 1;
      if (r.keypoint2d) has2d++;
      if (r.keypoint.every((v) => v === 0)) allZero++;
      // a joint moving more than 1 m (3D) between frames is suspicious
      if (f.meta.channels === 3) {
        const V = layoutByName(f.meta.layout).joints.length;
        for (let t = 1; t < r.frames; t++) {
          const o0 = (t - 1) * V * 3, o1 = t * V * 3;
          const d = Math.hypot(
            r.keypoint[o1] - r.keypoint[o0],
            r.keypoint[o1 + 1] - r.keypoint[o0 + 1],
            r.keypoint[o1 + 2] - r.keypoint[o0 + 2],
          );
          if (r.keypoint[o0 + 2] !== 0 && r.keypoint[o1 + 2] !== 0 && d > 1) {
            jumps++;
            break;
          }
        }
      }
    }
  }
  frames.sort((a, b) => a - b);
  if (allZero) warnings.push(`${allZero} samples have all-zero keypoints`);
  if (jumps) {
    warnings.push(`${jumps} samples have a root joint jumping more than 1 m between frames`);
  }
  for (const [name, s] of Object.entries(splits)) {
    const empty = s.perClass.map((n, k) => (n === 0 ? f.meta.classes[k] : null)).filter(Boolean);
    if (empty.length) {
      warnings.push(
        `split "${name}" has no sample of ${empty.length} classes (${empty.slice(0, 3).join(", ")}${
          empty.length > 3 ? ", ..." : ""
        })`,
      );
    }
  }
  const missing = f.index.names.length - new Set(f.index.names).size;
  if (missing) warnings.push(`${missing} duplicate sample names`);
  return {
    file: f.path,
    dataset: f.meta.dataset,
    layout: f.meta.layout,
    joints: layoutByName(f.meta.layout).joints.length,
    channels: f.meta.channels,
    keypointDtype: f.meta.keypointDtype,
    samples: f.size,
    classes: K,
    classNames: f.meta.classes,
    splits,
    frames: {
      min: frames[0] ?? 0,
      median: frames[Math.floor(frames.length / 2)] ?? 0,
      max: frames.at(-1) ?? 0,
    },
    persons,
    has2d,
    warnings,
  };
}
