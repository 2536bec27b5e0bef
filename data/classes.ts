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

/** Names for labels 0..maxLabel when the data names none: NTU's for NTU data, else "class i". */
export function defaultClassNames(maxLabel: number, ntuNamed: boolean): string[] {
  if (ntuNamed && maxLabel < 60) return ntuClasses(60);
  if (ntuNamed && maxLabel < 120) return ntuClasses(120);
  return Array.from({ length: maxLabel + 1 }, (_, i) => `class ${i}`);
}
