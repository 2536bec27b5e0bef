// How to run this heatformer again from a job script or a worker: the compiled binary itself,
// or Deno with the entry module (main.ts from source, or a `deno bundle` of it) and -A.
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

/** The argv prefix that runs heatformer's CLI (`[deno, run, -A, main.ts]` or `[binary]`). */
export function heatformerCommand(): string[] {
  const exe = Deno.execPath();
  if (!/^deno(\.exe)?$/.test(basename(exe))) return [exe]; // a compiled binary
  const fromSource = import.meta.url.endsWith("/sweep/command.ts");
  const entry = fromSource ? new URL("../main.ts", import.meta.url).href : Deno.mainModule;
  return [exe, "run", "-A", entry.startsWith("file:") ? fileURLToPath(entry) : entry];
}

/** A shell word, quoted where needed. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
