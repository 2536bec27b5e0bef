// `heatformer convert | inspect | render`: the data side of the CLI.
import { basename, dirname, extname, join, resolve } from "node:path";
import { DEFAULT_INPUT, type InputSpec } from "../data/batches.ts";
import { readClassNames } from "../data/classes.ts";
import { resolveLayoutArg } from "../data/layout_file.ts";
import { convertNtu, convertNwucla, readNameList } from "../data/convert.ts";
import { SYNTH_DEFAULT, synthMeta, synthRecords } from "../data/importers/synth.ts";
import { inspectFile } from "../data/inspect.ts";
import { renderSample } from "../data/render.ts";
import { SkeletonFile, type WriteReport, writeSkeletonArrow } from "../data/schema.ts";
import { writeError } from "../io/atomic.ts";
import { Runtime } from "../runtime/runtime.ts";
import { nonNegativeInt, positiveInt, printJson, UsageError } from "./output.ts";
import { checkOutputs, checkWritable } from "./writes.ts";

export const CONVERT_FORMATS = [
  "ntu",
  "nw-ucla",
  "synth",
  "pyskl",
  "kinetics-json",
  "openpose",
  "numpy",
] as const;

export interface ConvertFlags {
  out: string;
  classes?: string;
  layout?: string;
  labels?: string;
  split?: string;
  maxPersons?: string;
  missing?: string;
  seed?: string;
  subjects?: string;
  force?: boolean;
  json?: boolean;
}

/** Exit codes of an interrupted conversion: 128 + the signal's number, as shells report it. */
export const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

/**
 * `convert`: the conversion runs with an abort signal that Ctrl-C (SIGINT) and SIGTERM
 * trigger; the writer then stops at its next batch and removes its temporary files, and the
 * process exits 130 (SIGINT) or 143 (SIGTERM) with nothing written.
 */
export async function convertCommand(
  format: string,
  input: string | undefined,
  o: ConvertFlags,
): Promise<void> {
  const ac = new AbortController();
  let caught: keyof typeof SIGNAL_EXIT | null = null;
  const on = (sig: keyof typeof SIGNAL_EXIT) => () => {
    caught ??= sig;
    ac.abort(new Error(`interrupted by ${sig}`));
  };
  const handlers = { SIGINT: on("SIGINT"), SIGTERM: on("SIGTERM") };
  for (const [sig, h] of Object.entries(handlers)) Deno.addSignalListener(sig as Deno.Signal, h);
  try {
    // a signal after the output is renamed into place comes too late: the conversion is done
    await convertChecked(format, input, o, ac.signal);
  } catch (e) {
    if (!caught) throw e;
    console.error(`heatformer: interrupted (${caught}): nothing written to ${o.out}`);
    Deno.exit(SIGNAL_EXIT[caught]);
  } finally {
    for (const [sig, h] of Object.entries(handlers)) {
      Deno.removeSignalListener(sig as Deno.Signal, h);
    }
  }
}

/** `convert` after its flags and outputs are checked, then its summary. */
async function convertChecked(
  format: string,
  input: string | undefined,
  o: ConvertFlags,
  signal: AbortSignal,
): Promise<void> {
  if (!CONVERT_FORMATS.includes(format as typeof CONVERT_FORMATS[number])) {
    throw new UsageError(
      `convert: unknown format "${format}" (one of ${CONVERT_FORMATS.join(", ")})`,
    );
  }
  if (format !== "synth" && !input) throw new UsageError(`convert ${format}: INPUT is required`);
  if (!o.out.endsWith(".arrow")) {
    throw new UsageError(`--out: expected a .arrow path, got "${o.out}"`);
  }
  await checkOutputs({
    outputs: [o.out],
    inputs: [input, o.labels, o.classes, o.layout, o.missing],
    force: o.force,
    flag: "--out",
  });
  await checkWritable(o.out);
  const t0 = performance.now();
  let report: WriteReport;
  try {
    report = await convert(format, input, o, signal);
  } catch (e) {
    throw blameOutput(e, o.out);
  }
  const summary = {
    format,
    input: input ?? null,
    out: o.out,
    written: report.written,
    splits: report.splits ?? {},
    skipped: report.skipped.length,
    seconds: (performance.now() - t0) / 1000,
    skippedSamples: report.skipped, // every dropped sample, named
  };
  if (o.json) printJson({ ...summary, warnings: report.warnings ?? [] });
  else {
    for (const w of report.warnings ?? []) console.error(`warning: ${w}`);
    const per = Object.entries(report.splits ?? {}).map(([k, n]) => `${k} ${n}`).join(", ");
    console.log(
      `wrote ${report.written} sequences${per ? ` (${per})` : ""} to ${o.out} in ${
        summary.seconds.toFixed(1)
      } s`,
    );
    if (report.skipped.length) {
      console.log(
        `skipped ${report.skipped.length}: ${
          report.skipped.slice(0, 5).map((s) => `${s.name} (${s.reason})`).join(", ")
        }${report.skipped.length > 5 ? `, ... (--json lists all ${report.skipped.length})` : ""}`,
      );
    }
  }
}

/**
 * An importer's failure to write its output (a full disk, a folder made read-only meanwhile)
 * names the output, not the input it was reading (pyskl wraps it as a malformed input).
 */
function blameOutput(e: unknown, out: string): unknown {
  const m = e instanceof Error ? e.message : "";
  if (!/\(os error \d+\)/.test(m) || !(m.includes(out) || m.includes(resolve(out)))) return e;
  return writeError(out, e);
}

/** The importer of `format`, writing `o.out` (through a temporary file and a rename). */
async function convert(
  format: string,
  input: string | undefined,
  o: ConvertFlags,
  signal: AbortSignal,
): Promise<WriteReport> {
  switch (format) {
    case "ntu": {
      const classes = Number((o.classes ?? "60").replace(/^ntu/, ""));
      if (classes !== 60 && classes !== 120) {
        throw new UsageError(`--classes: 60 or 120, got "${o.classes}"`);
      }
      return await convertNtu(input!, o.out, {
        classes,
        missing: o.missing ? await readNameList(o.missing) : undefined,
        signal,
      });
    }
    case "nw-ucla":
      return await convertNwucla(input!, o.out, { signal });
    case "synth": {
      const seed = Number(o.seed ?? SYNTH_DEFAULT.seed);
      const subjects = Number(o.subjects ?? SYNTH_DEFAULT.subjects);
      if (!Number.isInteger(seed)) throw new UsageError(`--seed: an integer, got "${o.seed}"`);
      if (!Number.isInteger(subjects) || subjects < 2) {
        throw new UsageError(`--subjects: an integer >= 2, got "${o.subjects}"`);
      }
      const opts = {
        ...SYNTH_DEFAULT,
        seed,
        subjects,
        trainSubjects: Math.max(1, Math.round(subjects * 0.7)),
      };
      return await writeSkeletonArrow(o.out, synthMeta(), synthRecords(opts), o.out, { signal });
    }
    case "pyskl": {
      const { convertPyskl } = await import("../data/convert_pyskl.ts");
      return await convertPyskl(input!, o.out, {
        maxPersons: o.maxPersons ? positiveInt("--max-persons", o.maxPersons) : undefined,
        layout: o.layout ? await resolveLayoutArg(o.layout) : undefined,
        classes: o.classes ? await readClassNames(o.classes) : undefined,
        signal,
      });
    }
    case "numpy": {
      const { convertNumpy } = await import("../data/convert_numpy.ts");
      return await convertNumpy(input!, o.out, {
        labels: o.labels,
        split: o.split,
        layout: o.layout ? await resolveLayoutArg(o.layout) : undefined,
        classes: o.classes ? await readClassNames(o.classes) : undefined,
        signal,
      });
    }
    default: {
      const m = await import("../data/convert_openpose.ts");
      const maxPersons = o.maxPersons ? positiveInt("--max-persons", o.maxPersons) : undefined;
      const opts = {
        labels: o.labels,
        split: o.split,
        maxPersons,
        classes: o.classes ? await readClassNames(o.classes) : undefined,
        signal,
      };
      return format === "openpose"
        ? await m.convertOpenpose(input!, o.out, opts)
        : await m.convertKinetics(input!, o.out, opts);
    }
  }
}

export async function inspectCommand(path: string, o: { json?: boolean }): Promise<void> {
  const f = await SkeletonFile.open(path);
  try {
    const r = await inspectFile(f);
    if (o.json) return printJson(r);
    console.log(
      `${r.file}: ${r.dataset}, ${r.samples} sequences, ${r.classes} classes, layout ${r.layout} (${r.joints} joints, ${r.channels}D, ${r.keypointDtype})`,
    );
    console.log(
      `frames min/median/max ${r.frames.min}/${r.frames.median}/${r.frames.max}; persons ${
        JSON.stringify(r.persons)
      }; 2D image coordinates on ${r.has2d}`,
    );
    const shown = r.classNames.slice(0, 20).map((c, k) => `${k} ${c}`).join(", ");
    console.log(
      `classes: ${shown}${r.classNames.length > 20 ? `, ... (${r.classNames.length})` : ""}`,
    );
    for (const [name, s] of Object.entries(r.splits)) {
      console.log(
        `split ${name}: ${s.samples} (per class ${Math.min(...s.perClass)}..${
          Math.max(...s.perClass)
        })`,
      );
    }
    for (const w of r.warnings) console.log(`warning: ${w}`);
  } finally {
    await f.close();
  }
}

export function inputSpecFrom(
  o: { clipLen?: string; size?: string; sigma?: string; heatmap?: string },
): InputSpec {
  const spec = { ...DEFAULT_INPUT };
  if (o.clipLen !== undefined) spec.clipLen = positiveInt("--clip-len", o.clipLen);
  if (o.size !== undefined) spec.size = positiveInt("--size", o.size);
  if (o.sigma !== undefined) {
    spec.sigma = Number(o.sigma);
    if (!(spec.sigma > 0)) throw new UsageError(`--sigma: a positive number, got "${o.sigma}"`);
  }
  if (o.heatmap !== undefined) {
    if (!["joint", "limb", "both"].includes(o.heatmap)) {
      throw new UsageError(`--heatmap: joint, limb or both, got "${o.heatmap}"`);
    }
    spec.joints = o.heatmap !== "limb";
    spec.limbs = o.heatmap !== "joint";
  }
  return spec;
}

export async function renderCommand(
  path: string | undefined,
  o:
    & { sample?: string; clip: string; clips: string; out: string; force?: boolean; json?: boolean }
    & Record<string, string | boolean | undefined>,
): Promise<void> {
  if (!path) throw new UsageError("render: FILE is required (or --video)");
  if (!o.sample) throw new UsageError("render: --sample is required (or --video)");
  const ext = extname(o.out);
  if (ext !== ".png" && ext !== ".npy") {
    throw new UsageError(`--out: expected a .png or .npy path, got "${o.out}"`);
  }
  const clip = nonNegativeInt("--clip", o.clip), clips = positiveInt("--clips", o.clips);
  if (clip >= clips) throw new UsageError(`--clip: ${clip} is not below --clips ${clips}`);
  const spec = inputSpecFrom(o as Record<string, string>);
  // a .png comes with its .svg; both are written beside the output under temporary names,
  // then renamed into place
  const stem = o.out.slice(0, -ext.length);
  const outputs = ext === ".png" ? [o.out, `${stem}.svg`] : [o.out];
  await checkOutputs({ outputs, inputs: [path], force: o.force, flag: "--out" });
  await checkWritable(o.out);
  const tmpStem = join(dirname(stem), `.${basename(stem)}.${Deno.pid}.tmp`);
  const f = await SkeletonFile.open(path);
  try {
    const rt = await Runtime.create();
    const r = await renderSample(rt, f, {
      sample: o.sample!,
      clip,
      clips,
      out: tmpStem + ext,
      spec,
    });
    for (const out of outputs) {
      await Deno.rename(tmpStem + extname(out), out).catch((e) => {
        throw writeError(out, e);
      });
    }
    if (o.json) printJson({ ...r, path: o.out });
    else console.log(`wrote ${o.out} (volume ${r.shape.join(" x ")})`);
  } finally {
    await f.close();
    for (const out of outputs) await Deno.remove(tmpStem + extname(out)).catch(() => {});
  }
}
