// `heatformer convert numpy ...`: the arrays GCN repositories store, streamed a sample at a time.
//  - ST-GCN / 2s-AGCN: X.npy of N x C x T x V x M with a (names, labels) pickle (--labels), or a
//    folder holding {train,val}_data*.npy and {train,val}_label*.pkl (both splits).
//  - CTR-GCN: DATA.npz with x_train / x_test (N x T x (M * V * C)) and y_train / y_test (one-hot
//    or class indices); the splits are its train and test parts.
// Zero-padded frames at the end (ST-GCN pads to 300) and all-zero persons are dropped. C = 3 is
// x, y, z for the 3D layouts (ntu25, kinect20, h36m17) and x, y, score for the others.
import { basename, join } from "node:path";
import { type PyValue, readPickle } from "../io/pickle.ts";
import { type NpyRef, openNpy, readSlice } from "../io/npy.ts";
import { openNpz } from "../io/npz.ts";
import { defaultClassNames, MAX_CLASSES, maxLabel } from "./classes.ts";
import { type JointLayout, layoutByName, LAYOUTS } from "./layouts.ts";
import {
  DataError,
  type DatasetMeta,
  type SkeletonRecord,
  type WriteReport,
  writeSkeletonArrow,
} from "./schema.ts";

export interface NumpyOptions {
  /** X.npy: its labels, a (names, labels) pickle or an .npy of indices or one-hot rows. */
  labels?: string;
  layout?: JointLayout;
  classes?: string[];
  /** X.npy: the split of its samples (default train). */
  split?: string;
  /** Stops the write cleanly (nothing left behind). */
  signal?: AbortSignal;
}

const THREE_D = new Set(["ntu25", "kinect20", "h36m17"]);

/** One split's arrays: the data, how a sample is laid out, its labels and names. */
interface Part {
  split: string;
  data: NpyRef;
  /** "nctvm": N x C x T x V x M (ST-GCN); "ntmvc": N x T x (M V C) (CTR-GCN). */
  order: "nctvm" | "ntmvc";
  labels: number[];
  names: string[];
  /** Classes a one-hot label array declares (its width). */
  width?: number;
}

async function labelsOf(path: string, n: number): Promise<{ labels: number[]; names?: string[] }> {
  if (path.endsWith(".npy")) {
    const ref = await openNpy(path);
    return { labels: await indices(ref, path, path) };
  }
  const v = await readPickle(path);
  const pair = v instanceof Map ? null : (v as PyValue[]);
  if (
    !Array.isArray(pair) || pair.length !== 2 || !Array.isArray(pair[0]) || !Array.isArray(pair[1])
  ) {
    throw new DataError(path, null, "expected a (sample names, labels) pickle");
  }
  if (pair[1].length !== n) {
    throw new DataError(path, null, `${pair[1].length} labels for ${n} samples`);
  }
  return { names: pair[0].map(String), labels: pair[1].map(Number) };
}

/**
 * Class indices from (N,) indices or (N, K) one-hot rows. A row with no 1 in it names no class:
 * it is an error naming the row, not a guess.
 */
async function indices(ref: NpyRef, file: string, where: string): Promise<number[]> {
  const [n, k] = ref.shape;
  if (ref.shape.length !== 1 && ref.shape.length !== 2) {
    throw new DataError(where, null, `labels of shape (${ref.shape})`);
  }
  if (ref.shape.length === 2 && !(k > 0 && k <= MAX_CLASSES)) {
    throw new DataError(
      where,
      null,
      `one-hot labels ${k} wide: expected 1..${MAX_CLASSES} classes`,
    );
  }
  const all = await readSlice(ref, 0, ref.shape.reduce((a, b) => a * b, 1));
  if (ref.shape.length === 1) return Array.from(all);
  return Array.from({ length: n }, (_, i) => {
    const row = all.subarray(i * k, (i + 1) * k);
    let best = 0;
    for (let j = 1; j < k; j++) if (row[j] > row[best]) best = j;
    if (!(row[best] > 0)) {
      throw new DataError(file, `${where} row ${i}`, "a one-hot label row with no class set");
    }
    return best;
  });
}

async function parts(input: string, o: NumpyOptions): Promise<Part[]> {
  if (input.endsWith(".npz")) {
    const m = await openNpz(input);
    const out: Part[] = [];
    for (const split of ["train", "test", "val"]) {
      const x = m.get(`x_${split}`), y = m.get(`y_${split}`);
      if (!x || !y) continue;
      const labels = await indices(y, input, `y_${split}`);
      out.push({
        split,
        data: x,
        order: "ntmvc",
        labels,
        width: y.shape.length === 2 ? y.shape[1] : undefined,
        names: labels.map((_, i) => `${split}_${String(i).padStart(6, "0")}`),
      });
    }
    if (!out.length) {
      throw new DataError(input, null, "no x_train / y_train (or x_test / y_test) arrays");
    }
    return out;
  }
  if ((await Deno.stat(input).catch(() => null))?.isDirectory) {
    const files = [];
    for await (const e of Deno.readDir(input)) if (e.isFile) files.push(e.name);
    const out: Part[] = [];
    for (const split of ["train", "val", "test"]) {
      const data = files.filter((f) =>
        f.startsWith(`${split}_data`) && f.endsWith(".npy")
      ).sort()[0];
      const label = files.filter((f) =>
        f.startsWith(`${split}_label`) && /\.(pkl|pickle)$/.test(f)
      ).sort()[0];
      if (data && label) out.push(await npyPart(join(input, data), join(input, label), split));
    }
    if (!out.length) {
      throw new DataError(input, null, "no {train,val}_data*.npy with {train,val}_label*.pkl here");
    }
    return out;
  }
  if (!o.labels) throw new DataError(input, null, "--labels: the samples' labels are required");
  return [await npyPart(input, o.labels, o.split ?? "train")];
}

async function npyPart(data: string, labels: string, split: string): Promise<Part> {
  const ref = await openNpy(data);
  if (ref.shape.length !== 5) {
    throw new DataError(data, null, `shape (${ref.shape}): expected N x C x T x V x M`);
  }
  const l = await labelsOf(labels, ref.shape[0]);
  if (l.labels.length !== ref.shape[0]) {
    throw new DataError(labels, null, `${l.labels.length} labels for ${ref.shape[0]} samples`);
  }
  const names = l.names ?? l.labels.map((_, i) => `${split}_${String(i).padStart(6, "0")}`);
  return {
    split,
    data: ref,
    order: "nctvm",
    labels: l.labels,
    names: names.map((n) => n.replace(/\.skeleton$/, "")),
  };
}

/** (T, V, C, M) of a part's samples. */
function dims(
  p: Part,
  layout: JointLayout | undefined,
  where: string,
): [number, number, number, number] {
  if (p.order === "nctvm") {
    const [, C, T, V, M] = p.data.shape;
    return [T, V, C, M];
  }
  const [, T, mvc] = p.data.shape;
  const V = layout?.joints.length ?? 25, C = 3;
  if (p.data.shape.length !== 3 || mvc % (V * C)) {
    throw new DataError(where, null, `shape (${p.data.shape}): expected N x T x (M * ${V} * ${C})`);
  }
  return [T, V, C, mvc / (V * C)];
}

function layoutFor(
  V: number,
  C: number,
  given: JointLayout | undefined,
  where: string,
): JointLayout {
  if (given) {
    if (given.joints.length !== V) {
      throw new DataError(
        where,
        null,
        `--layout ${given.name} has ${given.joints.length} joints, the data ${V}`,
      );
    }
    return given;
  }
  const name =
    ({ 25: "ntu25", 18: "openpose18", 17: "coco17", 20: "kinect20" } as Record<number, string>)[V];
  if (!name || C < 2 || C > 3) {
    throw new DataError(
      where,
      null,
      `${V} joints x ${C} channels: name the layout with --layout (built-in: ${
        Object.keys(LAYOUTS).join(", ")
      })`,
    );
  }
  return layoutByName(name);
}

/** One sample as a record: (M, T, V, C) from the stored order, trailing empty frames cut. */
function record(
  flat: Float32Array,
  p: Part,
  i: number,
  [T, V, C, M]: [number, number, number, number],
  threeD: boolean,
): SkeletonRecord | { skip: string; reason: string } {
  const at = p.order === "nctvm"
    ? (m: number, t: number, v: number, c: number) => ((c * T + t) * V + v) * M + m
    : (m: number, t: number, v: number, c: number) => ((t * M + m) * V + v) * C + c;
  const present = (m: number, t: number) => {
    for (let v = 0; v < V; v++) {
      for (let c = 0; c < C; c++) if (flat[at(m, t, v, c)] !== 0) return true;
    }
    return false;
  };
  const persons = [...Array(M).keys()].filter((m) =>
    [...Array(T).keys()].some((t) => present(m, t))
  );
  let frames = 0;
  for (let t = 0; t < T; t++) if (persons.some((m) => present(m, t))) frames = t + 1;
  if (!persons.length || !frames) return { skip: p.names[i], reason: "all zeros" };
  const kc = threeD ? 3 : 2, pm = persons.length;
  const keypoint = new Float32Array(pm * frames * V * kc);
  const score = !threeD && C === 3 ? new Float32Array(pm * frames * V) : null;
  persons.forEach((m, k) => {
    for (let t = 0; t < frames; t++) {
      for (let v = 0; v < V; v++) {
        const dst = (k * frames + t) * V + v;
        for (let c = 0; c < kc; c++) keypoint[dst * kc + c] = flat[at(m, t, v, c)];
        if (score) score[dst] = flat[at(m, t, v, 2)];
      }
    }
  });
  return {
    name: p.names[i],
    label: p.labels[i],
    subject: 0,
    camera: 0,
    setup: 0,
    replication: 0,
    frames,
    persons: pm,
    keypoint,
    score,
    keypoint2d: null,
    imgShape: null,
    splits: [p.split],
  };
}

export async function convertNumpy(
  input: string,
  out: string,
  o: NumpyOptions = {},
): Promise<WriteReport> {
  const ps = await parts(input, o);
  const shape = dims(ps[0], o.layout, input);
  for (const p of ps) {
    if (dims(p, o.layout, input).slice(1).join() !== shape.slice(1).join()) {
      throw new DataError(
        input,
        null,
        `the ${p.split} part's samples are shaped unlike the ${ps[0].split} part's`,
      );
    }
  }
  const [, V, C] = shape;
  const layout = layoutFor(V, C, o.layout, input);
  const threeD = C === 3 && THREE_D.has(layout.name);
  const labelled = ps.flatMap((p) => p.labels.map((label, i) => ({ record: p.names[i], label })));
  const top = maxLabel(labelled, input, o.classes?.length);
  const width = Math.max(...ps.map((p) => p.width ?? 0));
  const classes = o.classes ?? defaultClassNames(Math.max(top, width - 1), false);
  const meta: DatasetMeta = {
    dataset: `numpy-${basename(input)}`,
    layout: layout.name,
    channels: threeD ? 3 : 2,
    classes,
    keypointDtype: "f32",
    batchSize: 64,
  };
  async function* records() {
    for (const p of ps) {
      const dimsP = dims(p, o.layout, input);
      const per = dimsP.reduce((a, b) => a * b, 1);
      for (let i = 0; i < p.data.shape[0]; i++) {
        yield record(await readSlice(p.data, i * per, per), p, i, dimsP, threeD);
      }
    }
  }
  return await writeSkeletonArrow(out, meta, records(), input, o);
}
