// `heatformer convert kinetics-json DIR [--labels LABELS.json]` and `convert openpose DIR
// --labels LABELS.csv`: OpenPose skeletons (ST-GCN's Kinetics-skeleton, or OpenPose's own
// per-frame JSON) streamed clip by clip into the Arrow writer.
import { join } from "node:path";
import { defaultClassNames, maxLabel } from "./classes.ts";
import { kineticsRecord, openposeRecord, readClipLabels } from "./importers/openpose.ts";
import { DataError, type DatasetMeta, type WriteReport, writeSkeletonArrow } from "./schema.ts";

export interface OpenposeOptions {
  /** Kinetics: a label file for DIR; OpenPose: the clip,label[,split] CSV. */
  labels?: string;
  /** Class names, in label order (a --classes list). */
  classes?: string[];
  /** Persons kept per frame, the most confident first (default 2). */
  maxPersons?: number;
  /** Kinetics with --labels: the split of DIR's clips (default train). */
  split?: string;
  /** Stops the write cleanly (nothing left behind). */
  signal?: AbortSignal;
}

interface KineticsLabel {
  has_skeleton?: boolean;
  label?: string;
  label_index?: number;
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new DataError(path, null, `not a readable JSON file (${(e as Error).message})`);
  }
}

async function jsonFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".json")) out.push(e.name);
    }
  } catch (e) {
    throw new DataError(dir, null, `cannot read the folder (${(e as Error).message})`);
  }
  return out.sort();
}

/** ST-GCN's layout (kinetics_train/, kinetics_val/ and their label files), else DIR + --labels. */
async function kineticsParts(
  dir: string,
  o: OpenposeOptions,
): Promise<{ folder: string; labels: string; split: string }[]> {
  if (o.labels) return [{ folder: dir, labels: o.labels, split: o.split ?? "train" }];
  const parts = [];
  for (const split of ["train", "val"]) {
    const folder = join(dir, `kinetics_${split}`),
      labels = join(dir, `kinetics_${split}_label.json`);
    if (await Deno.stat(folder).then(() => true, () => false)) {
      parts.push({ folder, labels, split });
    }
  }
  if (!parts.length) {
    throw new DataError(
      dir,
      null,
      "no kinetics_train/ or kinetics_val/ folder here: give the clips' label file with --labels",
    );
  }
  return parts;
}

export async function convertKinetics(
  dir: string,
  out: string,
  o: OpenposeOptions = {},
): Promise<WriteReport> {
  const parts = await kineticsParts(dir, o);
  const labelFiles = await Promise.all(
    parts.map(async (p) => (await readJson(p.labels)) as Record<string, KineticsLabel>),
  );
  // every label_index checked (naming its label file and clip) before classes are made
  const entries = labelFiles.flatMap((lf, k) => {
    if (!lf || typeof lf !== "object") {
      throw new DataError(parts[k].labels, null, "expected an object of clips");
    }
    return Object.entries(lf).map(([clip, v]) => ({ file: parts[k].labels, clip, v }));
  });
  const labelled = entries.filter((e) => e.v?.has_skeleton !== false && e.v?.label_index != null);
  let top = -1;
  for (const { file, clip, v } of labelled) {
    if (o.classes && v.label != null && !o.classes.includes(String(v.label))) {
      // a name the class list lacks is an error, not a new class
      throw new DataError(file, clip, `label "${v.label}" is not in the class list`);
    }
    top = Math.max(
      top,
      maxLabel([{ record: clip, label: v.label_index }], file, o.classes?.length),
    );
  }
  // class names: label_index -> label, from every label file
  const named = new Map<number, string>();
  for (const { v } of labelled) if (v.label) named.set(v.label_index!, String(v.label));
  const classes = o.classes ?? defaultClassNames(top, false).map((c, i) => named.get(i) ?? c);
  const meta: DatasetMeta = {
    dataset: "kinetics-skeleton",
    layout: "openpose18",
    channels: 2,
    classes,
    keypointDtype: "f32",
    batchSize: 64,
  };
  const maxPersons = o.maxPersons ?? 2;
  async function* records() {
    for (const [k, p] of parts.entries()) {
      for (const f of await jsonFiles(p.folder)) {
        const name = f.replace(/\.json$/, ""), path = join(p.folder, f);
        const l = labelFiles[k][name];
        if (!l) {
          yield { skip: name, reason: `not in ${p.labels}` };
          continue;
        }
        if (l.has_skeleton === false) {
          yield { skip: name, reason: "has_skeleton false" };
          continue;
        }
        const json = await readJson(path) as { label_index?: unknown };
        const label = Number(l.label_index ?? json?.label_index);
        if (!Number.isInteger(label) || label < 0 || label >= classes.length) {
          throw new DataError(path, name, `label_index ${l.label_index} is not a declared class`);
        }
        yield kineticsRecord(json, path, label, p.split, maxPersons);
      }
    }
  }
  return await writeSkeletonArrow(out, meta, records(), dir, o);
}

/** Joints per person in the first frame file with anybody in it: 25 (BODY_25) or 18 (COCO-18). */
async function peekJoints(dir: string, clips: string[]): Promise<25 | 18> {
  for (const clip of clips) {
    const files: string[] = [];
    try {
      for await (const e of Deno.readDir(join(dir, clip))) {
        if (e.isFile && e.name.endsWith("_keypoints.json")) files.push(e.name);
      }
    } catch (e) {
      throw new DataError(
        join(dir, clip),
        clip,
        `cannot read the clip folder (${(e as Error).message})`,
      );
    }
    for (const f of files.sort()) {
      const json = await readJson(join(dir, clip, f)) as {
        people?: { pose_keypoints_2d?: unknown[] }[];
      };
      const n = json?.people?.[0]?.pose_keypoints_2d?.length;
      if (n === undefined) continue;
      if (n === 75 || n === 54) return n === 75 ? 25 : 18;
      throw new DataError(
        join(dir, clip, f),
        clip,
        `${n / 3} joints (BODY_25 or COCO-18 expected)`,
      );
    }
  }
  throw new DataError(dir, null, "nobody in any frame of any clip");
}

export async function convertOpenpose(
  dir: string,
  out: string,
  o: OpenposeOptions = {},
): Promise<WriteReport> {
  if (!o.labels) throw new DataError(dir, null, "--labels: the clip,label[,split] CSV is required");
  const rows = await readClipLabels(o.labels);
  if (!rows.length) throw new DataError(o.labels, null, "no clip in the labels file");
  const numeric = rows.every((r) => /^\d+$/.test(r.label));
  const top = numeric && !o.classes
    ? maxLabel(rows.map((r) => ({ record: `line ${r.line}`, label: Number(r.label) })), o.labels)
    : -1;
  const classes = o.classes ??
    (numeric ? defaultClassNames(top, false) : [...new Set(rows.map((r) => r.label))].sort());
  const labelOf = (r: { label: string; line: number }) => {
    const k = numeric && !o.classes?.includes(r.label) ? Number(r.label) : classes.indexOf(r.label);
    if (k < 0 || k >= classes.length) {
      throw new DataError(
        o.labels!,
        `line ${r.line}`,
        `label "${r.label}" is not a declared class`,
      );
    }
    return k;
  };
  const V = await peekJoints(dir, rows.map((r) => r.clip));
  const meta: DatasetMeta = {
    dataset: "openpose",
    layout: V === 25 ? "openpose25" : "openpose18",
    channels: 2,
    classes,
    keypointDtype: "f32",
    batchSize: 64,
  };
  async function* records() {
    for (const r of rows) {
      const clip = join(dir, r.clip);
      const { record, V: v } = await openposeRecord(
        clip,
        labelOf(r),
        [r.split],
        o.maxPersons ?? 2,
      );
      if (v !== null && v !== V) throw new DataError(clip, r.clip, `${v} joints, other clips ${V}`);
      yield record;
    }
  }
  return await writeSkeletonArrow(out, meta, records(), dir, o);
}
