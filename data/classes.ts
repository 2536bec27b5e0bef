// Class names come from the data: a names file, a named NTU list, or the label range.
// NTU's names are used only when asked for or when the samples carry NTU names.
import { ntuClasses } from "./importers/ntu.ts";
import { DataError } from "./schema.ts";

/** `--classes` for importers: "ntu60", "ntu120", or a file with one class name per line. */
export async function readClassNames(spec: string): Promise<string[]> {
  if (spec === "ntu60" || spec === "60") return ntuClasses(60);
  if (spec === "ntu120" || spec === "120") return ntuClasses(120);
  let text: string;
  try {
    text = await Deno.readTextFile(spec);
  } catch (e) {
    throw new DataError(spec, null, `cannot read the class list (${(e as Error).message})`);
  }
  const names = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (!names.length) throw new DataError(spec, null, "the class list is empty");
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new DataError(spec, null, `class "${dup}" is listed twice`);
  return names;
}

/**
 * The most classes labels may imply when no class list is declared: a label is a class index,
 * and a stray 2^31 - 1 would otherwise ask for two billion class names.
 */
export const MAX_CLASSES = 100_000;

/** A sample's label as its source stores it, and the record to name when it is wrong. */
export interface LabelOf {
  record: string;
  label: unknown;
}

/**
 * The highest label, each checked on the way: an integer in 0..declared - 1 (or below
 * MAX_CLASSES when no classes are declared). The first bad one is an error naming `file` and
 * its record, raised before anything is allocated per class. -1 when there are no labels.
 */
export function maxLabel(labels: Iterable<LabelOf>, file: string, declared?: number): number {
  const limit = declared ?? MAX_CLASSES;
  let max = -1;
  for (const { record, label } of labels) {
    const k = typeof label === "bigint" ? Number(label) : label;
    if (typeof k !== "number" || !Number.isInteger(k) || k < 0 || k >= limit) {
      throw new DataError(
        file,
        record,
        `label ${String(label)} is not a class index: ` +
          (declared === undefined
            ? `expected 0..${MAX_CLASSES - 1} (give the class list with --classes for more)`
            : `the ${declared} declared classes are 0..${declared - 1}`),
      );
    }
    if (k > max) max = k;
  }
  return max;
}

/** Names for labels 0..maxLabel when the data names none: NTU's for NTU data, else "class i". */
export function defaultClassNames(maxLabel: number, ntuNamed: boolean): string[] {
  if (!(maxLabel < MAX_CLASSES)) throw new RangeError(`${maxLabel + 1} classes`);
  if (ntuNamed && maxLabel < 60) return ntuClasses(60);
  if (ntuNamed && maxLabel < 120) return ntuClasses(120);
  return Array.from({ length: maxLabel + 1 }, (_, i) => `class ${i}`);
}
