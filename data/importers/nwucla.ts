// Northwestern-UCLA Multiview Action 3D: a folder of JSON files
// {file_name: "aAA_sSS_eEE_vVV", skeletons: [T][20][3], label (1-based)}; the standard
// split trains on views 1 and 2 and tests on view 3.
import { DataError, type SkeletonRecord } from "../schema.ts";

export const NWUCLA_CLASSES = [
  "pick up with one hand",
  "pick up with two hands",
  "drop trash",
  "walk around",
  "sit down",
  "stand up",
  "donning",
  "doffing",
  "throw",
  "carry",
];

const NAME = /^a(\d+)_s(\d+)_e(\d+)_v(\d+)$/;

export function nwuclaRecord(json: unknown, file: string): SkeletonRecord {
  const o = json as { file_name?: unknown; skeletons?: unknown; label?: unknown };
  const name = typeof o?.file_name === "string" ? o.file_name : null;
  if (!name) throw new DataError(file, null, `no "file_name" string`);
  const m = NAME.exec(name);
  if (!m) throw new DataError(file, name, `file_name is not aAA_sSS_eEE_vVV`);
  const [, , subject, episode, view] = m.map(Number);
  const label = Number(o.label);
  if (!Number.isInteger(label) || label < 1 || label > 10) {
    throw new DataError(file, name, `label ${o.label} is not 1..10`);
  }
  const sk = o.skeletons;
  if (!Array.isArray(sk) || sk.length === 0) {
    throw new DataError(file, name, "empty sequence: no skeleton frames");
  }
  const T = sk.length;
  const kp = new Float32Array(T * 20 * 3);
  sk.forEach((frame: unknown, t: number) => {
    if (!Array.isArray(frame) || frame.length !== 20) {
      throw new DataError(file, name, `frame ${t} does not have 20 joints`);
    }
    frame.forEach((j: unknown, v: number) => {
      if (!Array.isArray(j) || j.length !== 3) {
        throw new DataError(file, name, `frame ${t} joint ${v} is not [x, y, z]`);
      }
      for (let c = 0; c < 3; c++) {
        const x = j[c];
        if (typeof x !== "number" || !Number.isFinite(x)) {
          throw new DataError(
            file,
            name,
            `frame ${t} joint ${v} coordinate ${"xyz"[c]} is ${JSON.stringify(x)}, not a number`,
          );
        }
        kp[(t * 20 + v) * 3 + c] = x;
      }
    });
  });
  return {
    name,
    label: label - 1,
    subject,
    camera: view,
    setup: 0,
    replication: episode,
    frames: T,
    persons: 1,
    keypoint: kp,
    score: null,
    keypoint2d: null,
    imgShape: null,
    splits: [view === 3 ? "val" : "train"],
  };
}
