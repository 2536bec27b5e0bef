// MotionBERT's official state_dict keys (Walter0807/MotionBERT, docs/motionbert.md) <->
// heatformer's DSTformer parameter names, and a loader that reports like PyTorch's strict
// load_state_dict: missing, unexpected and shape-mismatched keys.
//
//   official (ActionNet)                          heatformer
//   backbone.joints_embed.{weight,bias}           joints_embed.{weight,bias}
//   backbone.pos_embed          (1, J, d)         pos_embed.weight   (J, d)
//   backbone.temp_embed         (1, L, 1, d)      temp_embed.weight  (T, 1, d), rows [0, T)
//   backbone.blocks_st.i.{norm1,attn,norm2,mlp}_s levels.i.st_spatial.{norm1,attn,norm2,mlp}
//   backbone.blocks_st.i.{...}_t                  levels.i.st_temporal.{...}
//   backbone.blocks_ts.i.{...}_t                  levels.i.ts_temporal.{...}
//   backbone.blocks_ts.i.{...}_s                  levels.i.ts_spatial.{...}
//   backbone.ts_attn.i                            levels.i.fuse
//   backbone.norm, backbone.pre_logits.fc         norm, pre_logits
//   head.{fc1,bn,fc2}                             head.{fc1,bn,fc2}
//   backbone.head               (3, rep)          motion_head (a pretraining model: 0 classes)
//
// Checkpoints hold these keys behind prefixes: "module." (nn.DataParallel), "backbone." in an
// action checkpoint (its "model" entry), none in a pretraining checkpoint (its "model_pos"
// entry, the backbone alone). A reader that flattens the whole checkpoint gives "model." /
// "model_pos." in front. The backbone's pose head (backbone.head, dim_rep -> 3) is unused by an
// action model (a pretraining model has it as motion_head); batch norm's num_batches_tracked has
// no heatformer counterpart.
import type { Module } from "../layers/module.ts";
import type { Tensor } from "../runtime/tensor.ts";

/** One tensor of a checkpoint, as a reader gives it. */
export interface StateTensor {
  shape: readonly number[];
  data: ArrayLike<number> | BigInt64Array;
}

const STREAMS: Record<string, [blocks: string, axis: string]> = {
  st_spatial: ["blocks_st", "s"],
  st_temporal: ["blocks_st", "t"],
  ts_temporal: ["blocks_ts", "t"],
  ts_spatial: ["blocks_ts", "s"],
};

/** heatformer name -> official key in an action checkpoint's form (no "module."). */
export function officialName(name: string): string {
  const block = name.match(/^levels\.(\d+)\.(\w+)\.(norm1|norm2|attn|mlp)\.(.+)$/);
  if (block && STREAMS[block[2]]) {
    const [blocks, axis] = STREAMS[block[2]];
    return `backbone.${blocks}.${block[1]}.${block[3]}_${axis}.${block[4]}`;
  }
  const fuse = name.match(/^levels\.(\d+)\.fuse\.(weight|bias)$/);
  if (fuse) return `backbone.ts_attn.${fuse[1]}.${fuse[2]}`;
  if (name === "pos_embed.weight" || name === "temp_embed.weight") {
    return `backbone.${name.slice(0, -".weight".length)}`;
  }
  const pre = name.match(/^pre_logits\.(weight|bias)$/);
  if (pre) return `backbone.pre_logits.fc.${pre[1]}`;
  if (/^(joints_embed|norm)\.(weight|bias)$/.test(name)) return `backbone.${name}`;
  if (/^head\.(fc1|fc2|bn)\.\w+$/.test(name)) return name;
  // a pretraining model's pose head is the backbone's own (dim_rep -> 3)
  const pose = name.match(/^motion_head\.(weight|bias)$/);
  if (pose) return `backbone.head.${pose[1]}`;
  throw new Error(`${name}: not a parameter of MotionBERT's action model`);
}

/**
 * A checkpoint key in the action checkpoint's form: drops "model_pos." / "model." (a
 * flattened checkpoint's entry) and "module." (DataParallel); a backbone key without
 * "backbone." (a pretraining checkpoint) gets it.
 */
export function canonicalKey(key: string): string {
  let k = key.replace(/^(model_pos|model)\./, "").replace(/^module\./, "");
  if (!k.startsWith("backbone.") && !/^head\.(fc1|fc2|bn)\./.test(k)) k = `backbone.${k}`;
  return k;
}

/** Keys of the official model that the action model does not use. */
const UNUSED = /^backbone\.head\.(weight|bias)$|\.num_batches_tracked$/;

/** Every parameter and buffer of a model by name, with its shape. */
export function stateShapes(m: Module): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [k, p] of m.namedParams()) out.set(k, [...p.tensor.shape]);
  for (const [k, b] of m.namedBuffers()) out.set(k, [...b.shape]);
  return out;
}

export interface Mismatch {
  key: string;
  name: string;
  checkpoint: number[];
  model: number[];
}

export interface LoadReport {
  /** heatformer name -> values in heatformer's shape. */
  tensors: Map<string, Float32Array>;
  /** heatformer names no checkpoint key fills. */
  missing: string[];
  /** Checkpoint keys that name nothing here (or a name filled twice). */
  unexpected: string[];
  mismatched: Mismatch[];
  /** Checkpoint keys the action model does not use (the pose head, num_batches_tracked). */
  ignored: string[];
  /** temp_embed keys whose rows past the model's frames were dropped (as the official forward does). */
  trimmed: string[];
}

/**
 * Maps an official state_dict to heatformer names for a model with the given shapes
 * (stateShapes). pos_embed loses its leading 1; temp_embed (1, L, 1, d) gives its first T rows
 * for a model of T <= L frames. Nothing is thrown: the report says what did not fit.
 */
export function mapOfficialState(
  state: ReadonlyMap<string, StateTensor>,
  shapes: ReadonlyMap<string, readonly number[]>,
): LoadReport {
  const byOfficial = new Map<string, string>();
  for (const name of shapes.keys()) {
    try {
      byOfficial.set(officialName(name), name);
    } catch {
      // a heatformer-only parameter: stays missing
    }
  }
  const r: LoadReport = {
    tensors: new Map(),
    missing: [],
    unexpected: [],
    mismatched: [],
    ignored: [],
    trimmed: [],
  };
  for (const [key, t] of state) {
    const canon = canonicalKey(key);
    const name = byOfficial.get(canon);
    if (!name || r.tensors.has(name)) {
      (UNUSED.test(canon) && !name ? r.ignored : r.unexpected).push(key);
      continue;
    }
    const want = shapes.get(name)!;
    const got = [...t.shape];
    let keep = -1; // values to keep: all when the shapes agree
    if (canon === "backbone.pos_embed" && got.length === 3 && got[0] === 1) {
      if (same(got.slice(1), want)) keep = size(want);
    } else if (canon === "backbone.temp_embed" && got.length === 4 && got[0] === 1) {
      const [, l, one, d] = got;
      if (want.length === 3 && one === 1 && want[1] === 1 && d === want[2] && l >= want[0]) {
        keep = size(want); // frames-major: the first T rows are the first T*d values
        if (l > want[0]) r.trimmed.push(key);
      }
    } else if (same(got, want)) keep = size(want);
    if (keep < 0 || t.data instanceof BigInt64Array) { // an integer tensor fits no parameter
      r.mismatched.push({ key, name, checkpoint: got, model: [...want] });
      continue;
    }
    r.tensors.set(name, Float32Array.from({ length: keep }, (_, i) => t.data[i] as number));
  }
  for (const name of shapes.keys()) if (!r.tensors.has(name)) r.missing.push(name);
  return r;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const same = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** The report's problems in PyTorch's words; "" when there are none. */
export function describeProblems(r: LoadReport, allowMissing: readonly string[] = []): string {
  const missing = r.missing.filter((n) => !allowMissing.some((p) => n.startsWith(p)));
  const lines: string[] = [];
  if (missing.length) {
    const named = missing.map((n) => {
      try {
        return `"${n}" (${officialName(n)})`;
      } catch {
        return `"${n}"`;
      }
    });
    lines.push(`Missing key(s): ${named.join(", ")}.`);
  }
  if (r.unexpected.length) {
    lines.push(`Unexpected key(s): ${r.unexpected.map((k) => `"${k}"`).join(", ")}.`);
  }
  for (const m of r.mismatched) {
    lines.push(
      `size mismatch for ${m.key} (${m.name}): copying a param with shape [${m.checkpoint}] ` +
        `from checkpoint, the shape in current model is [${m.model}].`,
    );
  }
  return lines.join("\n\t");
}

/**
 * Loads an official state_dict into a DSTformer (parameters and batch-norm statistics),
 * strictly: throws on any missing (except names starting with `allowMissing`, e.g. "head."
 * for a pretraining checkpoint), unexpected or mismatched key, writing nothing.
 */
export function loadOfficial(
  m: Module,
  state: ReadonlyMap<string, StateTensor>,
  o: { allowMissing?: readonly string[] } = {},
): LoadReport {
  const r = mapOfficialState(state, stateShapes(m));
  const problems = describeProblems(r, o.allowMissing);
  if (problems) throw new Error(`Error(s) in loading MotionBERT's state_dict:\n\t${problems}`);
  writeMapped(m, r);
  return r;
}

/** Writes a report's mapped tensors into the model's parameters and buffers, whatever failed. */
export function writeMapped(m: Module, r: LoadReport): void {
  const targets = new Map<string, Tensor>();
  for (const [k, p] of m.namedParams()) targets.set(k, p.tensor);
  for (const [k, b] of m.namedBuffers()) targets.set(k, b);
  for (const [name, v] of r.tensors) m.rt.write(targets.get(name)!, v);
}
