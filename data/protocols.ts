// The evaluation protocols: a protocol names a dataset's train and validation splits (NTU's
// cross-subject / cross-view, NW-UCLA's view 3), and the datasets it applies to.
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
