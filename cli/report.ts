// `heatformer report RUN... [-o report.html]`: one self-contained HTML file comparing runs (no
// script, no network: styles and charts inline as SVG): a table of the runs, their curves
// overlaid, the configuration fields that differ between them, and each run's confusion
// matrix and per-class accuracy.
import { basename, join, resolve } from "node:path";
import { writeAtomic } from "../io/atomic.ts";
import { checkpointMetadata } from "../io/checkpoint.ts";
import { confusionSpec, type MetricsLine, overlaySpec, perClassSpec } from "../plots/charts.ts";
import { escapeXml, svgOf } from "../plots/render.ts";
import { layerLeaves } from "../training/experiment.ts";
import { readRunConfig } from "../training/experiment_file.ts";
import { readMetrics } from "../training/metrics_file.ts";
import { LAST } from "../training/run_folder.ts";
import { printJson, UsageError } from "./output.ts";
import { checkOutputs, checkWritable } from "./writes.ts";

/** What a report reads of each run folder. */
const RUN_INPUTS = ["config.json", "metrics.jsonl", "summary.json", LAST];

interface RunRecord {
  name: string;
  dir: string;
  /** The experiment's leaves by path ("optim.lr"). */
  config: Record<string, unknown>;
  metrics: MetricsLine[];
  summary: {
    model: string;
    parameters: number;
    epochs: number;
    bestEpoch: number;
    bestValAccuracy: number;
    seconds: number;
    final: {
      top1: number;
      top5: number;
      confusion: number[][];
      perClass: number[];
      checkpoint?: string;
      clips: number;
      flip: boolean;
    } | null;
  } | null;
  classes: string[];
}

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** A run folder: its config (required), metrics, summary and class names (when present). */
async function readRun(dir: string): Promise<RunRecord> {
  let config: Record<string, unknown>;
  try {
    // an older (flat) run is migrated: what it does not record had its default then too
    config = Object.fromEntries(layerLeaves((await readRunConfig(dir)).experiment));
  } catch (e) {
    throw new UsageError(`${dir}: not a run folder (config.json: ${(e as Error).message})`);
  }
  const metrics = (await readMetrics(join(dir, "metrics.jsonl"))).lines as MetricsLine[];
  const summary = await readJson(join(dir, "summary.json")).catch(() => null) as
    | RunRecord["summary"]
    | null;
  let classes: string[] = [];
  try {
    classes = JSON.parse((await checkpointMetadata(join(dir, LAST))).classes);
  } catch { /* an older run: numbered classes */ }
  const K = summary?.final?.confusion.length ?? 0;
  if (classes.length !== K) classes = Array.from({ length: K }, (_, k) => `class ${k}`);
  return { name: basename(resolve(dir)), dir, config, metrics, summary, classes };
}

/** Fields that record a run rather than configure it, or differ between any two runs by nature. */
const NOT_COMPARED = new Set(["run.out"]);

/** Configuration fields whose values are not the same in every run. */
export function differingFields(configs: Record<string, unknown>[]): string[] {
  const keys = [...new Set(configs.flatMap((c) => Object.keys(c)))].filter((k) =>
    !NOT_COMPARED.has(k)
  );
  return keys.filter((k) => new Set(configs.map((c) => JSON.stringify(c[k] ?? null))).size > 1)
    .sort();
}

const esc = escapeXml;
const pct = (v: number | undefined) => v === undefined ? "" : `${(v * 100).toFixed(1)}%`;

function runsTable(runs: RunRecord[]): string {
  const rows = runs.map((r) => {
    const c = r.config, s = r.summary;
    const [kind, len, size] = [c["input.kind"], c["input.clipLen"], c["input.size"]];
    const input = kind === "heatmap"
      ? `heatmap ${len}x${size}x${size} ${c["input.heatmap"]}`
      : `${kind} ${len} frames`;
    const final = s?.final
      ? `${pct(s.final.top1)} (${s.final.checkpoint ?? "best"}, ${s.final.clips} clip${
        s.final.clips > 1 ? "s" : ""
      }${s.final.flip ? " + flip" : ""})`
      : "not finished";
    return `<tr><td>${esc(r.name)}</td><td>${esc(String(c["model.preset"]))}</td><td>${
      esc(input)
    }</td><td>${esc(String(c["run.recipe"] ?? ""))}</td><td class="n">${
      s ? (s.parameters / 1e6).toFixed(2) + "M" : ""
    }</td><td class="n">${
      s ? `${pct(s.bestValAccuracy)} (epoch ${s.bestEpoch})` : ""
    }</td><td class="n">${esc(final)}</td><td class="n">${r.metrics.length}</td><td class="n">${
      s ? `${(s.seconds / 60).toFixed(1)} min` : ""
    }</td></tr>`;
  });
  return `<table id="runs"><thead><tr><th>run</th><th>model</th><th>input</th><th>recipe</th>` +
    `<th>params</th><th>best val top-1</th><th>final top-1</th><th>epochs</th><th>time</th>` +
    `</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function diffTable(runs: RunRecord[]): string {
  const fields = differingFields(runs.map((r) => r.config));
  if (!fields.length) return "<p>The runs share every configuration field.</p>";
  const head = runs.map((r) => `<th>${esc(r.name)}</th>`).join("");
  const rows = fields.map((f) =>
    `<tr><td>${esc(f)}</td>${
      runs.map((r) => `<td class="diff">${esc(JSON.stringify(r.config[f] ?? null))}</td>`).join("")
    }</tr>`
  );
  return `<table id="config-diff"><thead><tr><th>field</th>${head}</tr></thead><tbody>${
    rows.join("")
  }</tbody></table>`;
}

const STYLE = `body{font-family:"DejaVu Sans",sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px}th,td{border:1px solid #ccc;padding:4px 8px}
th{background:#f0f0f0;text-align:left}td.n{text-align:right}td.diff{background:#fff3c4}
section.run{margin:24px 0;border-top:2px solid #ddd}.charts{display:flex;flex-wrap:wrap;gap:16px}
svg{max-width:100%;height:auto}`;

export async function buildReport(dirs: string[]): Promise<{ html: string; runs: RunRecord[] }> {
  if (!dirs.length) throw new UsageError("report: name at least one run folder");
  const runs: RunRecord[] = [];
  for (const d of dirs) runs.push(await readRun(d));
  const overlay = await svgOf(overlaySpec(runs.map((r) => ({ name: r.name, metrics: r.metrics }))));
  const sections: string[] = [];
  for (const r of runs) {
    const f = r.summary?.final;
    const charts = f
      ? (await svgOf(confusionSpec(f.confusion, r.classes, f.top1))) +
        (await svgOf(perClassSpec(f.perClass, r.classes)))
      : "<p>No final evaluation (the run is unfinished).</p>";
    sections.push(
      `<section class="run"><h3>${esc(r.name)}</h3><div class="charts">${charts}</div></section>`,
    );
  }
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>heatformer report: ${runs.length} runs</title>
<style>${STYLE}</style></head><body>
<h1>heatformer report</h1>
<p>${runs.length} runs, written ${new Date().toISOString().slice(0, 16).replace("T", " ")}.</p>
<h2>Runs</h2>${runsTable(runs)}
<h2>Curves</h2><div id="curves">${overlay}</div>
<h2>Configuration differences</h2>${diffTable(runs)}
<h2>Each run</h2>${sections.join("\n")}
</body></html>
`;
  return { html, runs };
}

export async function reportCommand(
  dirs: string[],
  o: { out?: string; force?: boolean; json?: boolean },
) {
  const out = o.out ?? "report.html";
  const inputs = dirs.flatMap((d) => RUN_INPUTS.map((f) => join(d, f)));
  await checkOutputs({ outputs: [out], inputs, force: o.force, flag: "--out" });
  await checkWritable(out);
  const { html, runs } = await buildReport(dirs);
  await writeAtomic(out, html);
  const fields = differingFields(runs.map((r) => r.config));
  if (o.json) printJson({ report: out, runs: runs.map((r) => r.dir), differing: fields });
  else {console.log(
      `wrote ${out}: ${runs.length} runs, differing in ${fields.join(", ") || "nothing"}`,
    );}
}
