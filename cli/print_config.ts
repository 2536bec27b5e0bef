// `train --print-config`: the resolved experiment, every leaf with its origin. As text it is
// JSON with comments, itself a valid `--config` file (print, load, print: the same experiment);
// with --json, `{ "experiment": ..., "origins": { "optim.lr": "recipe cpu", ... } }`.
import type { Experiment } from "../training/experiment.ts";
import type { Origins } from "../training/resolve.ts";
import { printJson } from "./output.ts";

/** The experiment as JSON with each leaf's origin as a trailing comment. */
export function configText(e: Experiment, origins: Origins): string {
  const groups = Object.entries(e) as [string, Record<string, unknown>][];
  const lines = ["{"];
  groups.forEach(([g, leaves], gi) => {
    lines.push(`  ${JSON.stringify(g)}: {`);
    const entries = Object.entries(leaves);
    entries.forEach(([k, v], ki) => {
      const comma = ki < entries.length - 1 ? "," : "";
      lines.push(
        `    ${JSON.stringify(k)}: ${JSON.stringify(v)}${comma} // ${
          origins[`${g}.${k}`] ?? "default"
        }`,
      );
    });
    lines.push(`  }${gi < groups.length - 1 ? "," : ""}`);
  });
  lines.push("}");
  return lines.join("\n");
}

export function printConfig(e: Experiment, origins: Origins, json: boolean): void {
  if (json) printJson({ experiment: e, origins });
  else console.log(configText(e, origins));
}
