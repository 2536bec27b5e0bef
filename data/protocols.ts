// The evaluation protocols: a protocol names a dataset's train and validation splits (NTU's
// cross-subject / cross-view, NW-UCLA's view 3), and the datasets it applies to.
import { Rng } from "../layers/init.ts";
export const PROTOCOLS: Record<string, [string, string]> = {
  "ntu60-xsub": ["xsub_train", "xsub_val"],
  "ntu60-xview": ["xview_train", "xview_val"],
  "ntu120-xsub": ["xsub_train", "xsub_val"],
  "ntu120-xset": ["xset_train", "xset_val"],
  "nw-ucla": ["train", "val"],
  "synth": ["train", "val"],
};

/** The datasets each protocol belongs to (a file's `dataset` metadata). */
export const PROTOCOL_DATASETS: Record<string, RegExp> = {
  "ntu60-xsub": /^(ntu|pyskl)/,
  "ntu60-xview": /^(ntu|pyskl)/,
  "ntu120-xsub": /^(ntu|pyskl)/,
  "ntu120-xset": /^(ntu|pyskl)/,
  "nw-ucla": /^nw-ucla$/,
  "synth": /^synth$/,
};

export function splitNames(split: string): [string, string] {
  if (PROTOCOLS[split]) return PROTOCOLS[split];
  const parts = split.split(":");
  if (parts.length === 2 && parts[0] && parts[1]) return [parts[0], parts[1]];
  throw new Error(
    `--split: "${split}" is neither a protocol (${
      Object.keys(PROTOCOLS).join(", ")
    }) nor TRAIN:VAL`,
  );
}

/**
 * A fraction of a split, per class: each class keeps ceil(fraction x its samples) (at least
 * one), drawn by a fixed seed so that every run (any --seed) of a small-data experiment trains
 * on the same clips, and a larger fraction keeps a smaller one's clips. Returned in file order.
 */
export function splitFraction(
  indices: readonly number[],
  labels: readonly number[],
  fraction: number,
): number[] {
  if (fraction >= 1) return [...indices];
  const byClass = new Map<number, number[]>();
  for (const i of indices) {
    const members = byClass.get(labels[i]);
    if (members) members.push(i);
    else byClass.set(labels[i], [i]);
  }
  const kept: number[] = [];
  for (const [label, members] of byClass) {
    const rng = new Rng(0x5eed).fork(label);
    // Fisher-Yates: a prefix of one fixed order per class
    for (let k = members.length - 1; k > 0; k--) {
      const j = rng.int(k + 1);
      [members[k], members[j]] = [members[j], members[k]];
    }
    kept.push(...members.slice(0, Math.max(1, Math.ceil(fraction * members.length))));
  }
  return kept.sort((a, b) => a - b);
}
