// MotionBERT's official checkpoints in and out: the architecture read from a state_dict's
// shapes (width, depth, MLP ratio, representation and head widths, joints, frames, classes;
// the head count, which no shape carries, given), and a DSTformer's parameters written back
// under the official keys, so that PyTorch's `load_state_dict(strict=True)` takes them.
import { DEFAULT_CONFIG, type ModelConfig } from "./config.ts";
import { canonicalKey, officialName, type StateTensor } from "./motionbert_names.ts";
import type { DSTformer } from "./dstformer.ts";

/** What the shapes say, and what they cannot (a pretraining checkpoint has no action head). */
export interface OfficialArchitecture {
  config: ModelConfig;
  /** The frames of the checkpoint's temporal table (243 for the official models). */
  maxFrames: number;
  /** False for a pretraining checkpoint (the backbone alone): the head starts fresh. */
  hasHead: boolean;
}

function shapeOf(state: ReadonlyMap<string, StateTensor>, key: string, file: string): number[] {
  for (const [k, t] of state) if (canonicalKey(k) === key) return [...t.shape];
  throw new Error(`${file}: no ${key}: not a MotionBERT checkpoint`);
}

/**
 * The DSTformer a state_dict holds. `heads` (8 in every official config) and, for a backbone
 * without a head, `classes` come from the caller; `frames` may cut the temporal table.
 */
export function officialArchitecture(
  state: ReadonlyMap<string, StateTensor>,
  file: string,
  o: { heads: number; classes?: number; frames?: number; persons?: number },
): OfficialArchitecture {
  const s = (k: string) => shapeOf(state, k, file);
  const [width, dimIn] = s("backbone.joints_embed.weight");
  const [, joints] = s("backbone.pos_embed");
  const [, maxFrames] = s("backbone.temp_embed");
  const [repDim] = s("backbone.pre_logits.fc.weight");
  const [hidden] = s("backbone.blocks_st.0.mlp_s.fc1.weight");
  const keys = [...state.keys()].map(canonicalKey);
  const depth = new Set(
    keys.map((k) => k.match(/^backbone\.blocks_st\.(\d+)\./)?.[1]).filter((x) => x !== undefined),
  ).size;
  const hasHead = keys.includes("head.fc2.weight");
  const [classes, headHidden] = hasHead ? s("head.fc2.weight") : [o.classes ?? 60, 2048];
  if (dimIn !== 3) {
    throw new Error(`${file}: joints take ${dimIn} values, expected 3 (x, y, score)`);
  }
  if (width % o.heads) throw new Error(`--heads: ${o.heads} does not divide the width ${width}`);
  const frames = o.frames ?? maxFrames;
  if (frames > maxFrames) {
    throw new Error(`--frames: ${frames} exceeds the checkpoint's ${maxFrames} frames`);
  }
  const config: ModelConfig = {
    ...DEFAULT_CONFIG,
    family: "motionbert",
    width,
    depth,
    heads: o.heads,
    mlpRatio: hidden / width,
    repDim,
    headHidden,
    dropout: 0,
    dropPath: 0,
    headDropout: 0.5,
    heatmapPersons: "merge",
    classes,
    input: { kind: "kp2d", channels: joints, frames, size: 56, persons: o.persons ?? 2 },
  };
  return { config, maxFrames, hasHead };
}

/** A tensor to write under an official key. */
export interface OfficialTensor {
  shape: number[];
  data: Float32Array | BigInt64Array;
}

/**
 * The model's parameters and batch-norm statistics under the official ActionNet keys, with the
 * official shapes (pos_embed (1, J, d), temp_embed (1, T, 1, d)), plus what the official model
 * has and heatformer's does not: the backbone's unused pose head (zeros, dim_rep -> 3) and
 * batch norm's num_batches_tracked (`steps`).
 */
export async function officialState(
  model: DSTformer,
  steps = 0,
): Promise<Map<string, OfficialTensor>> {
  const named = [...model.namedParams()].map(([k, p]) => [k, p.tensor] as const);
  named.push(...model.namedBuffers());
  const values = await model.rt.readMany(named.map(([, t]) => t));
  const out = new Map<string, OfficialTensor>();
  named.forEach(([name, t], i) => {
    const key = officialName(name);
    const shape = key === "backbone.pos_embed"
      ? [1, ...t.shape]
      : key === "backbone.temp_embed"
      ? [1, ...t.shape]
      : [...t.shape];
    out.set(key, { shape, data: Float32Array.from(values[i]) });
  });
  const rep = model.config.repDim;
  out.set("backbone.head.weight", { shape: [3, rep], data: new Float32Array(3 * rep) });
  out.set("backbone.head.bias", { shape: [3], data: new Float32Array(3) });
  out.set("head.bn.num_batches_tracked", { shape: [], data: new BigInt64Array([BigInt(steps)]) });
  return out;
}
