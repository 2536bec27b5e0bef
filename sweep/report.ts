// `sweep report`: the study's kind of table from a sweep's run folders. One row per
// combination of the axes other than the repetition axis (seed), the final top-1 averaged over
// the repetitions with its sample standard deviation, the best marked. With two such axes the
// table is rows x columns (the first axis down, the second across), as a paper prints it.
import { join } from "node:path";
import { escapeXml } from "../plots/render.ts";
import type { TrainSummary } from "../training/trainer.ts";
import { readSweepRecord, sweepPaths, type SweepRecord } from "./folder.ts";
import type { Value } from "./spec.ts";

export interface Cell {
  mean: number | null;
  std: number | null;
  /** Finished runs averaged, and runs of the combination in all. */
  n: number;
  of: number;
}

export interface ReportRow {
  values: Record<string, Value>;
  top1: Cell;
  runs: string[];
}

export interface SweepTable {
  name: string;
  axes: string[];
  repeat: string;
  rows: ReportRow[];
}

async function finalTop1(dir: string): Promise<number | null> {
  try {
    const s = JSON.parse(await Deno.readTextFile(join(dir, "summary.json"))) as TrainSummary;
    return s.final && !s.interrupted ? s.final.top1 : null;
  } catch {
    return null;
  }
}

function cell(values: number[], of: number): Cell {
  const n = values.length;
  if (!n) return { mean: null, std: null, n, of };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n, of };
}

const key = (v: Record<string, Value>) => JSON.stringify(v);

/** The table of a sweep folder. */
export async function sweepTable(dir: string, record?: SweepRecord): Promise<SweepTable> {
  const r = record ?? await readSweepRecord(dir);
  const groups = new Map<string, { values: Record<string, Value>; runs: string[] }>();
  for (const run of r.runs) {
    const values = Object.fromEntries(
      Object.entries(run.values).filter(([k]) => k !== r.repeat),
    );
    const g = groups.get(key(values)) ?? { values, runs: [] };
    g.runs.push(run.name);
    groups.set(key(values), g);
  }
  const rows: ReportRow[] = [];
  for (const g of groups.values()) {
    const scores: number[] = [];
    for (const name of g.runs) {
      const t = await finalTop1(sweepPaths(dir).run(name));
      if (t !== null) scores.push(t);
    }
    rows.push({ values: g.values, top1: cell(scores, g.runs.length), runs: g.runs });
  }
  return { name: r.name, axes: r.axes.filter((a) => a !== r.repeat), repeat: r.repeat, rows };
}

const pct = (v: number | null) => v === null ? "—" : (v * 100).toFixed(1);

/** "84.8 ± 0.3" (n of m when runs are missing). */
export function cellText(c: Cell): string {
  if (c.mean === null) return `— (0/${c.of})`;
  const sd = c.n > 1 ? ` ± ${pct(c.std)}` : "";
  return `${pct(c.mean)}${sd}${c.n < c.of ? ` (${c.n}/${c.of})` : ""}`;
}

const text = (v: Value | undefined) =>
  v === undefined ? "" : Array.isArray(v) ? v.join(",") : String(v);

/** The grid: rows x columns for two axes, else one row per combination. */
function grid(t: SweepTable): { head: string[]; body: { label: string[]; cells: Cell[] }[] } {
  const best = Math.max(...t.rows.map((r) => r.top1.mean ?? -1));
  void best;
  if (t.axes.length === 2) {
    const [down, across] = t.axes;
    const cols = [...new Set(t.rows.map((r) => text(r.values[across])))];
    const downs = [...new Set(t.rows.map((r) => text(r.values[down])))];
    const empty = (): Cell => ({ mean: null, std: null, n: 0, of: 0 });
    return {
      head: [`${down} \\ ${across}`, ...cols],
      body: downs.map((d) => ({
        label: [d],
        cells: cols.map((c) =>
          t.rows.find((r) => text(r.values[down]) === d && text(r.values[across]) === c)
            ?.top1 ?? empty()
        ),
      })),
    };
  }
  return {
    head: [...t.axes, `top-1 (%, over ${t.repeat})`],
    body: t.rows.map((r) => ({ label: t.axes.map((a) => text(r.values[a])), cells: [r.top1] })),
  };
}

/** The table in Markdown, the best mean in bold. */
export function markdownTable(t: SweepTable): string {
  const g = grid(t);
  const best = Math.max(...t.rows.map((r) => r.top1.mean ?? -1));
  const show = (c: Cell) => c.of === 0 ? "" : c.mean === best ? `**${cellText(c)}**` : cellText(c);
  const lines = [
    `| ${g.head.join(" | ")} |`,
    `| ${g.head.map(() => "---").join(" | ")} |`,
    ...g.body.map((r) => `| ${[...r.label, ...r.cells.map(show)].join(" | ")} |`),
  ];
  return lines.join("\n");
}

/** One line per combination: its values, mean, std, n. */
export function csvTable(t: SweepTable): string {
  const q = (s: string) => /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  const head = [...t.axes, "top1_mean", "top1_std", "n", "runs"].map(q).join(",");
  const rows = t.rows.map((r) =>
    [
      ...t.axes.map((a) => text(r.values[a])),
      r.top1.mean === null ? "" : String(r.top1.mean),
      r.top1.std === null ? "" : String(r.top1.std),
      String(r.top1.n),
      String(r.top1.of),
    ].map(q).join(",")
  );
  return [head, ...rows].join("\n") + "\n";
}

/** The table as an HTML fragment (for the report page above every run's curves). */
export function htmlTable(t: SweepTable): string {
  const g = grid(t);
  const best = Math.max(...t.rows.map((r) => r.top1.mean ?? -1));
  const td = (c: Cell) =>
    `<td class="n">${
      c.of === 0
        ? ""
        : c.mean === best
        ? `<b>${escapeXml(cellText(c))}</b>`
        : escapeXml(cellText(c))
    }</td>`;
  return `<h2>sweep ${escapeXml(t.name)}: final top-1 (%), mean ± std over ${
    escapeXml(t.repeat)
  }</h2><table id="sweep"><thead><tr>${
    g.head.map((h) => `<th>${escapeXml(h)}</th>`).join("")
  }</tr></thead><tbody>${
    g.body.map((r) =>
      `<tr>${r.label.map((l) => `<td>${escapeXml(l)}</td>`).join("")}${
        r.cells.map(td).join("")
      }</tr>`
    ).join("")
  }</tbody></table>`;
}
