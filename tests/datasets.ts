// Where the real datasets are: $HEATFORMER_DATASETS, else ../shared/datasets beside the
// repository. Tests that need them skip, saying so, when absent.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const DATASETS = Deno.env.get("HEATFORMER_DATASETS") ??
  resolve(join(dirname(fileURLToPath(import.meta.url)), "..", "..", "shared", "datasets"));

export function datasetPath(...parts: string[]): string | null {
  const p = join(DATASETS, ...parts);
  try {
    Deno.statSync(p);
    return p;
  } catch {
    return null;
  }
}

/** Deno.test that skips (ignored, with a message) when a dataset path is missing. */
export function dataTest(name: string, parts: string[], fn: (path: string) => Promise<void>): void {
  const p = datasetPath(...parts);
  if (!p) {
    console.log(
      `skipping "${name}": ${join(DATASETS, ...parts)} is absent (set HEATFORMER_DATASETS)`,
    );
  }
  Deno.test({ name, ignore: !p, fn: () => fn(p!) });
}
