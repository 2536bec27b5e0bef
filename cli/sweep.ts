// `heatformer sweep plan | run | resume | status | report | task`: a grid of experiments
// (sweep/spec.ts) run on this machine or as a Slurm job array, its table reported.
import type { Command } from "commander";
import { join } from "node:path";
import { Runtime } from "../runtime/runtime.ts";
import { dryRun } from "../training/dry_run.ts";
import { withRunFolder } from "../training/experiment.ts";
import { buildReport } from "./report.ts";
import {
  readSweepRecord,
  saveSweepRecord,
  sweepPaths,
  type SweepRecord,
  writePlan,
} from "../sweep/folder.ts";
import { runLocal } from "../sweep/local.ts";
import { csvTable, htmlTable, markdownTable, sweepTable } from "../sweep/report.ts";
import { slurmScript, slurmStates, submit } from "../sweep/slurm.ts";
import { planSweep, type SlurmSettings } from "../sweep/spec.ts";
import { runStates } from "../sweep/status.ts";
import { runTask } from "../sweep/task.ts";
import { positiveInt, printJson, runCommand, UsageError } from "./output.ts";

type Opts = Record<string, string | boolean | undefined>;

async function planCommand(file: string, o: Opts): Promise<void> {
  const plan = await planSweep(file, o.out as string | undefined, (o.flags as string) ?? "");
  const rows = [];
  const rt = o.estimate ? await Runtime.create() : null;
  for (const r of plan.runs) {
    const row: Record<string, unknown> = {
      index: r.index,
      name: r.name,
      folder: r.experiment.run.out,
      values: r.values,
    };
    if (rt) {
      try {
        const d = await dryRun(rt, withRunFolder(r.experiment), r.origins, 1);
        row.estimate = {
          seconds: d.estimate.runSeconds,
          msPerStep: d.msPerStep,
          adapter: d.adapter,
        };
      } catch (e) {
        row.estimate = { error: (e as Error).message };
      }
    }
    rows.push(row);
  }
  if (o.json) return printJson({ sweep: plan.name, out: plan.out, axes: plan.axes, runs: rows });
  console.log(`sweep ${plan.name}: ${rows.length} runs into ${plan.out}`);
  for (const r of rows) {
    const est = r.estimate as { seconds?: number; error?: string } | undefined;
    const cost = est
      ? est.seconds !== undefined
        ? `  ~${(est.seconds / 3600).toFixed(2)} h here`
        : `  (${est.error})`
      : "";
    console.log(`${String(r.index).padStart(3)}  ${r.name}${cost}`);
  }
}

function slurmSettings(o: Opts, file?: SlurmSettings): SlurmSettings {
  const s: SlurmSettings = { ...file };
  for (const k of ["partition", "account", "qos", "time", "gres", "mem"] as const) {
    if (typeof o[k] === "string") s[k] = o[k] as string;
  }
  if (typeof o.signal === "string") s.signalSeconds = Number(o.signal);
  if (typeof o.parallel === "string") s.parallel = positiveInt("--parallel", o.parallel);
  return s;
}

async function launch(dir: string, record: SweepRecord, o: Opts, file?: SlurmSettings) {
  if (!o.slurm && o.local === undefined) throw new UsageError("sweep: choose --local N or --slurm");
  if (o.slurm) {
    const states = await runStates(dir, record, await slurmStates(record));
    const todo = record.runs.filter((r) => {
      const s = states.get(r.name)!.state;
      return s !== "done" && s !== "running" && !(s === "queued" && states.get(r.name)!.slurm);
    }).map((r) => r.index);
    if (!todo.length) {
      if (o.json) printJson({ sweep: dir, submitted: null, runs: 0 });
      else console.log(`${dir}: nothing to submit (every run is done, running or queued)`);
      return;
    }
    const script = sweepPaths(dir).script;
    await Deno.writeTextFile(script, slurmScript(dir, record, todo, slurmSettings(o, file)));
    const jobId = await submit(script);
    record.slurm = [...(record.slurm ?? []), {
      jobId,
      indices: todo,
      submitted: new Date().toISOString(),
      script,
    }];
    await saveSweepRecord(dir, record);
    if (o.json) printJson({ sweep: dir, submitted: jobId, runs: todo.length, indices: todo });
    else {console.log(
        `${dir}: submitted job array ${jobId} (${todo.length} runs); sweep status ${dir}`,
      );}
    return;
  }
  const parallel = positiveInt("--local", String(o.local === true ? "1" : o.local));
  const r = await runLocal(dir, record, parallel, (l) => console.error(l));
  if (o.json) printJson({ sweep: dir, ...r });
  if (r.interrupted) Deno.exit(130);
  if (r.failed.length) Deno.exit(1);
}

async function runSweepCommand(file: string, o: Opts): Promise<void> {
  const plan = await planSweep(file, o.out as string | undefined, (o.flags as string) ?? "");
  const record = await writePlan(plan);
  await launch(plan.out, record, o, plan.sweep.slurm);
}

async function resumeCommand(dir: string, o: Opts): Promise<void> {
  const record = await readSweepRecord(dir);
  await launch(dir, record, o);
}

async function statusCommand(dir: string, o: Opts): Promise<void> {
  const record = await readSweepRecord(dir);
  const states = [...(await runStates(dir, record, await slurmStates(record))).values()];
  const counts: Record<string, number> = {};
  for (const s of states) counts[s.state] = (counts[s.state] ?? 0) + 1;
  if (o.json) return printJson({ sweep: dir, counts, runs: states });
  for (const s of states) {
    const ep = s.epochs ? ` ${s.epochs[0]}/${s.epochs[1]} epochs` : "";
    const res = s.resumed ? ` (resumed ${s.resumed}x)` : "";
    const sq = s.slurm ? ` [slurm ${s.slurm}]` : "";
    console.log(`${s.name}: ${s.state}${ep}${res}${sq}${s.error ? `: ${s.error}` : ""}`);
  }
  console.log(Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", "));
}

async function reportSweepCommand(dir: string, o: Opts): Promise<void> {
  const record = await readSweepRecord(dir);
  const table = await sweepTable(dir, record);
  const out = (o.out as string | undefined) ?? dir;
  await Deno.mkdir(out, { recursive: true });
  const md = markdownTable(table);
  await Deno.writeTextFile(join(out, "report.md"), md + "\n");
  await Deno.writeTextFile(join(out, "report.csv"), csvTable(table));
  const folders = record.runs.map((r) => sweepPaths(dir).run(r.name));
  const started = [];
  for (const f of folders) {
    if (await Deno.stat(join(f, "config.json")).catch(() => null)) started.push(f);
  }
  if (started.length) {
    const { html } = await buildReport(started);
    await Deno.writeTextFile(
      join(out, "report.html"),
      html.replace(
        "<h1>heatformer report</h1>",
        `<h1>heatformer sweep ${record.name}</h1>${htmlTable(table)}`,
      ),
    );
  }
  if (o.json) {
    return printJson({ sweep: dir, axes: table.axes, repeat: table.repeat, rows: table.rows });
  }
  console.log(md);
}

export function addSweepCommands(program: Command): void {
  const sweep = program.command("sweep")
    .description("a grid of experiments: plan, run locally or on Slurm, status, report");
  sweep.command("plan").argument("<sweep.json>")
    .description("list the sweep's runs and their folders (nothing is written)")
    .option("--out <dir>", "the sweep's folder (default: runs/sweeps/NAME)")
    .option("--estimate", "time each run's dry run here (train --dry-run)")
    .option("--flags <flags>", 'train flags for every run, after the sweep\'s (e.g. "--epochs 1")')
    .option("--json", "print one JSON object")
    .action((f, o) => runCommand(() => planCommand(f, o), o));
  const backend = (c: Command) =>
    c.option("--local [n]", "run here, N runs at a time (default 1)")
      .option("--slurm", "submit one sbatch job array")
      .option("--partition <p>", "Slurm partition")
      .option("--account <a>", "Slurm account")
      .option("--qos <q>", "Slurm QOS")
      .option("--time <t>", "Slurm time limit per run (e.g. 24:00:00)")
      .option("--gres <g>", "Slurm generic resources per run (e.g. gpu:1)")
      .option("--mem <m>", "Slurm memory per run")
      .option("--signal <seconds>", "SIGUSR1 this long before the time limit (default 120)")
      .option("--parallel <n>", "Slurm: at most N array tasks at once")
      .option("--json", "print one JSON object");
  backend(
    sweep.command("run").argument("<sweep.json>")
      .description("start the sweep (or continue it: finished runs are skipped)")
      .option("--out <dir>", "the sweep's folder (default: runs/sweeps/NAME)"),
  )
    .action((f, o) => runCommand(() => runSweepCommand(f, o), o));
  backend(
    sweep.command("resume").argument("<dir>")
      .description("continue a sweep: interrupted runs resume, finished ones are skipped"),
  )
    .action((d, o) => runCommand(() => resumeCommand(d, o), o));
  sweep.command("status").argument("<dir>")
    .description("each run: queued, running, done, failed (with its error) or preempted")
    .option("--json", "print one JSON object")
    .action((d, o) => runCommand(() => statusCommand(d, o), o));
  sweep.command("report").argument("<dir>")
    .description("the table (mean and std over seeds): report.md, report.csv, report.html")
    .option("--out <dir>", "where the report files go (default: the sweep folder)")
    .option("--json", "print one JSON object")
    .action((d, o) => runCommand(() => reportSweepCommand(d, o), o));
  sweep.command("task").argument("<dir>").argument("<index>")
    .description("train one run of a sweep (what each Slurm array task and local worker runs)")
    .action((d, i) =>
      runCommand(async () => {
        const status = await runTask(d, Number(i));
        if (status) Deno.exit(status);
      })
    );
}
