// `heatformer convert pyskl FILE.pkl`: pyskl / mmaction2 annotation pickles
// {split: {name: [frame_dir]}, annotations: [{frame_dir, label, total_frames, keypoint
// (M, T, V, C), keypoint_score?, img_shape?}]}: 2D HRNet (V = 17, C = 2, with scores) or 3D
// (V = 25, C = 3, float16).
import { type NdArray, PickleError, type PyValue, readPickle } from "../io/pickle.ts";
import { f16BitsToF32 } from "../runtime/dtype.ts";
import { defaultClassNames, maxLabel } from "./classes.ts";
import { parseNtuName } from "./importers/ntu.ts";
import { type JointLayout, layoutByName, LAYOUTS } from "./layouts.ts";
import {
  DataError,
  type DatasetMeta,
  type SkeletonRecord,
  type WriteReport,
  writeSkeletonArrow,
} from "./schema.ts";

function get(m: PyValue, key: string): PyValue | undefined {
  return m instanceof Map ? m.get(key) : undefined;
}

/** An annotation's name: its frame_dir, else its index. */
const nameOf = (a: PyValue, i: number) => String(get(a, "frame_dir") ?? `#${i}`);

/** A label as a number (pickles hold ints, numpy scalars or bigints); anything else as is. */
function labelValue(v: PyValue | undefined): unknown {
  return typeof v === "bigint" || typeof v === "number" ? Number(v) : v;
}

function isArray(v: PyValue | undefined): v is NdArray {
  return !!v && typeof v === "object" && "kind" in v && (v as NdArray).kind === "ndarray";
}

function toF32(a: NdArray): Float32Array {
  if (a.dtype === "f4") return a.data as Float32Array;
  if (a.dtype === "f2") return Float32Array.from(a.data as Uint16Array, f16BitsToF32);
  return Float32Array.from(a.data as ArrayLike<number>, Number);
}

/** Options of `convert pyskl`: a layout where the shape is ambiguous, and class names. */
/**
 * At most `max` persons, those with the highest mean score first (pyskl keeps the most confident
 * of a Kinetics clip's many); all of them without scores or a limit.
 */
export function mostConfident(
  kp: Float32Array,
  score: Float32Array | null,
  [M, T, V, C]: number[],
  max = Infinity,
): { persons: number; keypoint: Float32Array; score: Float32Array | null } {
  if (!score || M <= max) return { persons: M, keypoint: kp, score };
  const per = T * V;
  const mean = (m: number) => score.subarray(m * per, (m + 1) * per).reduce((a, b) => a + b, 0);
  const keep = [...Array(M).keys()].sort((a, b) => mean(b) - mean(a)).slice(0, max);
  const keypoint = new Float32Array(keep.length * per * C), s = new Float32Array(keep.length * per);
  keep.forEach((m, k) => {
    keypoint.set(kp.subarray(m * per * C, (m + 1) * per * C), k * per * C);
    s.set(score.subarray(m * per, (m + 1) * per), k * per);
  });
  return { persons: keep.length, keypoint, score: s };
}

export interface PysklOptions {
  /** Persons kept per clip, the most confident first (default: all). */
  maxPersons?: number;
  /** A layout (built-in, or read with resolveLayoutArg from --layout FILE.json). */
  layout?: JointLayout;
  classes?: string[];
  /** Stops the write cleanly (nothing left behind). */
  signal?: AbortSignal;
}

/** Layouts a keypoint shape (V, C) implies; others need --layout. */
const INFERRED: Record<string, string> = {
  "17x2": "coco17",
  "25x3": "ntu25",
  "18x2": "openpose18", // 25 x 2 is ambiguous (NTU's 2D joints or BODY_25): --layout
  "20x3": "kinect20",
};

function layoutFor(path: string, V: number, C: number, given?: JointLayout): JointLayout {
  if (given) {
    if (given.joints.length !== V) {
      throw new DataError(
        path,
        null,
        `--layout ${given.name} has ${given.joints.length} joints, the keypoints have ${V}`,
      );
    }
    return given;
  }
  const inferred = INFERRED[`${V}x${C}`];
  if (!inferred) {
    throw new DataError(
      path,
      null,
      `keypoints of ${V} joints x ${C} channels: name their layout with --layout NAME or ` +
        `--layout FILE.json (built-in: ${Object.keys(LAYOUTS).join(", ")})`,
    );
  }
  return layoutByName(inferred);
}

export async function convertPyskl(
  path: string,
  out: string,
  o: PysklOptions = {},
): Promise<WriteReport> {
  try {
    return await convertPickle(path, out, o);
  } catch (e) {
    if (e instanceof DataError || e instanceof PickleError || o.signal?.aborted) throw e;
    // values of the wrong kind where the layout expects arrays, numbers or strings
    throw new DataError(path, null, `malformed annotation file (${(e as Error).message})`);
  }
}

async function convertPickle(path: string, out: string, o: PysklOptions): Promise<WriteReport> {
  const root = await readPickle(path);
  const anns = get(root, "annotations");
  const splitDict = get(root, "split");
  if (!Array.isArray(anns)) {
    throw new DataError(path, null, `no "annotations" list (is this a pyskl annotation file?)`);
  }
  const splitOf = new Map<string, string[]>();
  if (splitDict instanceof Map) {
    for (const [name, list] of splitDict) {
      if (!Array.isArray(list)) continue;
      for (const n of list) {
        const k = String(n);
        if (!splitOf.has(k)) splitOf.set(k, []);
        splitOf.get(k)!.push(String(name));
      }
    }
  }
  const first = anns.find((a) => isArray(get(a, "keypoint")));
  const kp0 = first ? get(first, "keypoint") as NdArray : null;
  if (!kp0 || kp0.shape.length !== 4) {
    throw new DataError(path, null, "annotations carry no (M, T, V, C) keypoint array");
  }
  const [, , V, C] = kp0.shape;
  if (C !== 2 && C !== 3) {
    throw new DataError(path, null, `keypoints have ${C} channels per joint (2 or 3 expected)`);
  }
  const layout = layoutFor(path, V, C, o.layout).name;
  // every label checked before the class list is made: one huge label must not size it
  const top = maxLabel(
    anns.map((a, i) => ({ record: nameOf(a, i), label: labelValue(get(a, "label")) })),
    path,
    o.classes?.length,
  );
  const ntuNamed = anns.every((a) => parseNtuName(String(get(a, "frame_dir") ?? "")) !== null);
  const classes = o.classes ?? defaultClassNames(top, ntuNamed);
  const meta: DatasetMeta = {
    dataset: `pyskl-${layout}`,
    layout,
    channels: C as 2 | 3,
    classes,
    keypointDtype: kp0.dtype === "f2" ? "f16" : "f32",
    batchSize: 64,
  };
  const list: PyValue[] = anns;
  function* records(): Generator<SkeletonRecord | { skip: string; reason: string }> {
    for (const [i, a] of list.entries()) {
      const name = nameOf(a, i);
      const kp = get(a, "keypoint");
      if (!isArray(kp) || kp.shape.length !== 4) {
        throw new DataError(path, name, "keypoint is not an (M, T, V, C) array");
      }
      const [M, T, v, c] = kp.shape;
      if (v !== V || c !== C) {
        throw new DataError(
          path,
          name,
          `keypoint is ${M}x${T}x${v}x${c}, the file's layout is Vx C = ${V}x${C}`,
        );
      }
      if (T === 0 || M === 0) {
        yield { skip: name, reason: "empty keypoint array" };
        continue;
      }
      const total = get(a, "total_frames");
      if (total !== undefined && Number(total) !== T) {
        throw new DataError(
          path,
          name,
          `total_frames is ${total}, its keypoint array has ${T} frames`,
        );
      }
      const sc = get(a, "keypoint_score");
      if (sc !== undefined && (!isArray(sc) || sc.shape.join() !== [M, T, V].join())) {
        throw new DataError(
          path,
          name,
          `keypoint_score shape ${
            isArray(sc) ? sc.shape.join("x") : typeof sc
          } does not match ${M}x${T}x${V}`,
        );
      }
      const label = labelValue(get(a, "label")) as number; // checked by maxLabel above
      const img = get(a, "img_shape");
      const n = parseNtuName(name);
      yield {
        name,
        label,
        subject: n?.performer ?? 0,
        camera: n?.camera ?? 0,
        setup: n?.setup ?? 0,
        replication: n?.replication ?? 0,
        frames: T,
        ...mostConfident(toF32(kp), isArray(sc) ? toF32(sc) : null, [M, T, V, C], o.maxPersons),
        keypoint2d: null,
        imgShape: Array.isArray(img) && img.length === 2 ? [Number(img[0]), Number(img[1])] : null,
        splits: splitOf.get(name) ?? [],
      };
    }
  }
  const report = await writeSkeletonArrow(out, meta, records(), path, o);
  const names = new Set(list.map(nameOf));
  const unknown = [...splitOf.keys()].filter((n) => !names.has(n));
  if (unknown.length) {
    report.warnings = [
      ...(report.warnings ?? []),
      `${path}: the split lists ${unknown.length} names with no annotation (${
        unknown.slice(0, 3).join(", ")
      }${unknown.length > 3 ? ", ..." : ""})`,
    ];
  }
  return report;
}
