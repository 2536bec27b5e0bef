// The formats OpenPose users have, streamed into the Arrow writer one clip at a time:
//  - ST-GCN's Kinetics-skeleton: one JSON per clip, {data: [{frame_index, skeleton: [{pose:
//    [x0, y0, x1, y1, ...], score: [...]}]}], label, label_index}, coordinates normalised to
//    [0, 1] (of 340 x 256 videos), OpenPose-18; label files {clip: {label, label_index, ...}}.
//  - OpenPose's own output: one folder per clip with a *_keypoints.json per frame,
//    {people: [{pose_keypoints_2d: [x, y, c, ...]}]} in pixels, BODY_25 or COCO-18; a CSV maps
//    clip folders to labels (and optionally to splits).
// Persons are ranked per frame by their summed confidence and the first `maxPersons` kept, as
// pyskl does for Kinetics.
import { basename, join } from "node:path";
import { type CsvRow, parseCsv } from "../csv.ts";
import { DataError, type SkeletonRecord } from "../schema.ts";

/** One frame's people: x, y and score per joint. */
export interface FramePeople {
  people: { xy: number[]; score: number[] }[];
}

/** Frames of people -> (M, T, V, 2) keypoints and (M, T, V) scores, the most confident first. */
export function stackPeople(
  frames: FramePeople[],
  V: number,
  maxPersons: number,
): { persons: number; keypoint: Float32Array; score: Float32Array } {
  const T = frames.length;
  const M = Math.max(1, Math.min(maxPersons, Math.max(0, ...frames.map((f) => f.people.length))));
  const keypoint = new Float32Array(M * T * V * 2), score = new Float32Array(M * T * V);
  frames.forEach((f, t) => {
    const ranked = [...f.people].sort((a, b) => sum(b.score) - sum(a.score)).slice(0, M);
    ranked.forEach((p, m) => {
      for (let j = 0; j < V; j++) {
        const at = (m * T + t) * V + j;
        keypoint[at * 2] = p.xy[j * 2];
        keypoint[at * 2 + 1] = p.xy[j * 2 + 1];
        score[at] = p.score[j];
      }
    });
  });
  return { persons: M, keypoint, score };
}

const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);

function numbers(v: unknown, n: number, file: string, what: string): number[] {
  if (!Array.isArray(v) || v.length !== n || v.some((x) => typeof x !== "number" || !isFinite(x))) {
    throw new DataError(file, null, `${what}: expected ${n} numbers`);
  }
  return v as number[];
}

/** Kinetics-skeleton's frame size: ST-GCN normalised OpenPose's output on 340 x 256 videos. */
export const KINETICS_SIZE = { width: 340, height: 256 };

/** One Kinetics-skeleton clip (the JSON file) as a record; label from the label file. */
export function kineticsRecord(
  json: unknown,
  file: string,
  label: number,
  split: string,
  maxPersons: number,
): SkeletonRecord | { skip: string; reason: string } {
  const name = basename(file).replace(/\.json$/, "");
  const data = (json as { data?: unknown })?.data;
  if (!Array.isArray(data)) throw new DataError(file, name, `no "data" list of frames`);
  let T = 0;
  const byIndex = new Map<number, FramePeople>();
  data.forEach((fr: unknown, k: number) => {
    const f = fr as { frame_index?: unknown; skeleton?: unknown };
    const t = Number(f?.frame_index);
    if (!Number.isInteger(t) || t < 1 || t > 100000) {
      throw new DataError(
        file,
        name,
        `data[${k}].frame_index is ${JSON.stringify(f?.frame_index)}`,
      );
    }
    if (!Array.isArray(f.skeleton)) {
      throw new DataError(file, name, `data[${k}].skeleton is no list`);
    }
    T = Math.max(T, t);
    byIndex.set(t - 1, {
      people: f.skeleton.map((s: unknown, i: number) => {
        const p = s as { pose?: unknown; score?: unknown };
        const xy = numbers(p?.pose, 36, file, `${name} data[${k}].skeleton[${i}].pose`)
          .map((v, c) => v * (c % 2 ? KINETICS_SIZE.height : KINETICS_SIZE.width));
        return {
          xy,
          score: numbers(p?.score, 18, file, `${name} data[${k}].skeleton[${i}].score`),
        };
      }),
    });
  });
  if (T === 0) return { skip: name, reason: "no frame" };
  const frames = Array.from({ length: T }, (_, t) => byIndex.get(t) ?? { people: [] });
  return clipRecord(name, label, frames, 18, maxPersons, [split], [
    KINETICS_SIZE.height,
    KINETICS_SIZE.width,
  ]);
}

/** A clip's frames of people as a record (the fields no OpenPose format carries left 0). */
function clipRecord(
  name: string,
  label: number,
  frames: FramePeople[],
  V: number,
  maxPersons: number,
  splits: string[],
  imgShape: [number, number] | null,
): SkeletonRecord {
  const { persons, keypoint, score } = stackPeople(frames, V, maxPersons);
  return {
    name,
    label,
    subject: 0,
    camera: 0,
    setup: 0,
    replication: 0,
    frames: frames.length,
    persons,
    keypoint,
    score,
    keypoint2d: null,
    imgShape,
    splits,
  };
}

/** One OpenPose frame file's people; `V` from the first person (25 or 18). */
export function openposeFrame(json: unknown, file: string, V: number | null): FramePeople & {
  V: number | null;
} {
  const people = (json as { people?: unknown })?.people;
  if (!Array.isArray(people)) throw new DataError(file, null, `no "people" list`);
  let v = V;
  const out = people.map((p: unknown, i: number) => {
    const k = (p as { pose_keypoints_2d?: unknown })?.pose_keypoints_2d;
    if (!Array.isArray(k) || k.length % 3 !== 0) {
      throw new DataError(file, null, `people[${i}].pose_keypoints_2d is not x, y, c triplets`);
    }
    v ??= k.length / 3;
    const t = numbers(k, v * 3, file, `people[${i}].pose_keypoints_2d`);
    return {
      xy: t.flatMap((_, j) => (j % 3 === 2 ? [] : [t[j]])),
      score: t.filter((_, j) => j % 3 === 2),
    };
  });
  return { people: out, V: v };
}

/** An OpenPose clip folder (its *_keypoints.json frames in name order) as a record. */
export async function openposeRecord(
  dir: string,
  label: number,
  splits: string[],
  maxPersons: number,
): Promise<{ record: SkeletonRecord | { skip: string; reason: string }; V: number | null }> {
  const name = basename(dir);
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith("_keypoints.json")) files.push(e.name);
    }
  } catch (e) {
    throw new DataError(dir, name, `cannot read the clip folder (${(e as Error).message})`);
  }
  if (!files.length) return { record: { skip: name, reason: "no *_keypoints.json" }, V: null };
  files.sort();
  let V: number | null = null;
  const frames: FramePeople[] = [];
  for (const f of files) {
    const path = join(dir, f);
    let json: unknown;
    try {
      json = JSON.parse(await Deno.readTextFile(path));
    } catch (e) {
      throw new DataError(path, name, `not valid JSON (${(e as Error).message})`);
    }
    const fr = openposeFrame(json, path, V);
    V = fr.V;
    frames.push(fr);
  }
  if (V === null) return { record: { skip: name, reason: "nobody in any frame" }, V };
  return { record: clipRecord(name, label, frames, V, maxPersons, splits, null), V };
}

/** The OpenPose CSV: `clip,label[,split]` per line (a header line is skipped), RFC 4180 quoting. */
export async function readClipLabels(
  path: string,
): Promise<{ clip: string; label: string; split: string; line: number }[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new DataError(path, null, `cannot read the labels (${(e as Error).message})`);
  }
  let rows: CsvRow[];
  try {
    rows = parseCsv(text).filter((r) => r.fields.some((f) => f.trim()));
  } catch (e) {
    throw new DataError(path, null, (e as Error).message);
  }
  if (rows.length && /^(clip|name|folder)$/i.test(rows[0].fields[0].trim())) rows.shift();
  return rows.map(({ fields, line }) => {
    const [clip, label, split] = fields.map((c) => c.trim());
    if (!clip || !label) throw new DataError(path, `line ${line}`, "expected clip,label[,split]");
    return { clip, label, split: split || "train", line };
  });
}
