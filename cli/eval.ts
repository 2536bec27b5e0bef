// `heatformer eval RUN_DIR|CHECKPOINT --data FILE --split NAME`: top-1/5, per-class and
// mean class accuracy, confusion matrix, PoseConv3D's multi-clip (+ flip) test, --json, and
// labelled charts (SVG and PNG) of the confusion matrix, per-class accuracy and the curves.
import { basename, dirname, join } from "node:path";
import { SkeletonFile } from "../data/schema.ts";
import { parseLayout } from "../data/layout_file.ts";
import { converts, type ScoreOrder } from "../data/layout_map.ts";
import { type JointLayout, layoutByName, registerLayout, sameLayout } from "../data/layouts.ts";
import { heatmapChannels } from "../data/pipeline.ts";
import { writeError } from "../io/atomic.ts";
import { CheckpointError, loadCheckpoint, readCheckpoint } from "../io/checkpoint.ts";
import { located } from "../io/errors.ts";
import { writeChart } from "../plots/render.ts";
import { confusionSpec, curvesSpec, type MetricsLine, perClassSpec } from "../plots/charts.ts";
import type { ModelConfig } from "../models/config.ts";
import { buildModel } from "../models/presets.ts";
import { Runtime } from "../runtime/runtime.ts";
import { type InputSpec, TEST_MODE } from "../data/batches.ts";
import { splitNames } from "../data/protocols.ts";
import type { Experiment } from "../training/experiment.ts";
import { readRunConfig } from "../training/experiment_file.ts";
import { readMetrics } from "../training/metrics_file.ts";
import { ensemble, type EvalScores, evaluateScores, summarize } from "../training/evaluate.ts";
import { builtinDataset, inputSpecOf, splitUnion } from "../training/setup.ts";
import { printJson, UsageError } from "./output.ts";
import { checkOutputs, realPath } from "./writes.ts";
import { positiveInt } from "./output.ts";

/** A checkpoint written before checkpoints recorded their input: the heatmap kind follows from
 * the model's channel count; sigma and view alignment are taken to be the defaults. */
export function legacySpec(mc: ModelConfig, layout: JointLayout, ckpt: string): InputSpec {
  const base = {
    kind: mc.input.kind,
    clipLen: mc.input.frames,
    size: mc.input.size,
    sigma: 0.6,
    persons: mc.input.persons,
  };
  if (mc.input.kind !== "heatmap") return { ...base, joints: true, limbs: false };
  const kinds = [[true, false], [false, true], [true, true]] as const;
  const fit = kinds.find(([joints, limbs]) =>
    heatmapChannels(layout, { ...base, joints, limbs }) === mc.input.channels
  );
  if (!fit) {
    throw new UsageError(
      `${ckpt}: its model takes ${mc.input.channels} heatmap channels, which no heatmap kind of ` +
        `the ${layout.name} layout gives; evaluate its run folder instead`,
    );
  }
  return { ...base, joints: fit[0], limbs: fit[1] };
}

/** The joint layout a checkpoint records (null for checkpoints from before it did). */
export function modelLayoutOf(t: { ckpt: string; metadata: Record<string, string> }) {
  return t.metadata.layout
    ? registerLayout(parseLayout(JSON.parse(t.metadata.layout), t.ckpt), t.ckpt)
    : null;
}

/**
 * Data of another joint layout than the model's is refused (exit 2), naming both, unless it
 * converts to the model's (data/layout_map.ts; openInLayout reads it so).
 */
export function checkLayout(input: string, layout: JointLayout, model: JointLayout | null) {
  if (model && !sameLayout(layout, model) && !converts(layout.name, model.name)) {
    throw located(
      new UsageError(
        `${input}: its layout ${layout.name} (${layout.joints.length} joints) is not the ` +
          `model's ${model.name} (${model.joints.length} joints)`,
      ),
      input,
    );
  }
}

/**
 * A dataset as the model reads it: converted to the model's joint layout where a conversion
 * exists (data/layout_map.ts: COCO-17 data for an H36M-17 MotionBERT model), else refused when
 * the layouts differ, naming both. `input` names the data in errors.
 */
export async function openInLayout(
  path: string,
  input: string,
  model: JointLayout | null,
  scores: ScoreOrder = "mapped",
): Promise<SkeletonFile> {
  let file = await SkeletonFile.open(path);
  const own = file.meta.layout;
  if (model && converts(own, model.name)) {
    await file.close();
    file = await SkeletonFile.open(path, { layout: model.name, scores });
  }
  try {
    checkLayout(input, layoutByName(file.meta.layout), model);
    return file;
  } catch (e) {
    await file.close();
    throw e;
  }
}

/**
 * A run folder (the checkpoint its final evaluation used: last unless the run said best, or
 * `which`) or a checkpoint file, with the run's config if any.
 */
export async function openTarget(target: string, which?: "last" | "best") {
  const isDir = (await Deno.stat(target).catch(() => null))?.isDirectory ?? false;
  const runDir = isDir ? target : dirname(target);
  const { run, finalCheckpoint } = await runRecord(runDir);
  const chosen = which ?? finalCheckpoint;
  const ckpt = isDir ? join(target, `${chosen}.safetensors`) : target;
  const st = await readCheckpoint(ckpt);
  if (!st.metadata.config) {
    throw new CheckpointError(
      `${ckpt}: no model configuration in its metadata (not a heatformer checkpoint)`,
    );
  }
  const mc = JSON.parse(st.metadata.config) as ModelConfig;
  if (mc.classes === 0) {
    throw new UsageError(
      `${ckpt}: a pretraining checkpoint (MotionBERT's task: 3D motion, no classifier); ` +
        `fine-tune a classifier from it with train --init ${target}`,
    );
  }
  const layoutScores =
    (run?.data.layoutScores ?? st.metadata.layout_scores ?? "mapped") as ScoreOrder;
  return { ckpt, runDir, metadata: st.metadata, mc, run, layoutScores };
}

/**
 * The run in a folder: its configuration (null when there is none or it is unreadable) and the
 * checkpoint its final evaluation used: its config's choice; "best" for runs from before the
 * choice existed (they evaluated their best epoch); "last" where there is no run config.
 */
async function runRecord(
  dir: string,
): Promise<{ run: Experiment | null; finalCheckpoint: "last" | "best" }> {
  try {
    const { experiment } = await readRunConfig(dir);
    return { run: experiment, finalCheckpoint: experiment.eval.checkpoint };
  } catch {
    return { run: null, finalCheckpoint: "last" };
  }
}

export async function evalCommand(
  target: string,
  o: {
    data?: string;
    split?: string;
    clips?: string;
    flip?: boolean;
    batchSize: string;
    json?: boolean;
    out?: string;
    ensemble?: string;
    checkpoint?: string;
    force?: boolean;
  },
): Promise<void> {
  const targets = [target, ...(o.ensemble ? o.ensemble.split(",").filter(Boolean) : [])];
  if (o.checkpoint !== undefined && o.checkpoint !== "last" && o.checkpoint !== "best") {
    throw new UsageError(`--checkpoint: "${o.checkpoint}" is neither last nor best`);
  }
  const opened = [];
  for (const t of targets) opened.push(await openTarget(t, o.checkpoint as "last" | "best"));
  const { ckpt, runDir, run, metadata } = opened[0];
  // The data and split: flags, else the run folder's config (the built-in dataset regenerated
  // when its cache is gone), else what the checkpoint itself records.
  const recorded = metadata.data
    ? JSON.parse(metadata.data) as { path: string; split: string }
    : null;
  const dataPath = o.data ?? (run ? run.data.path ?? await builtinDataset(runDir) : recorded?.path);
  if (!dataPath) {
    throw new UsageError("--data: which Arrow file to evaluate on (the checkpoint does not say)");
  }
  const protocol = run?.data.split ?? recorded?.split;
  const split = o.split ?? (protocol ? splitNames(protocol)[1] : undefined);
  if (!split) throw new UsageError("--split: which split to evaluate");
  // The charts: in the run folder they are the run's (replaced by each eval); elsewhere an
  // existing one is replaced only with --force. No metrics beside the checkpoint: no curves.
  const out = o.out ?? runDir;
  const { lines } = await readMetrics(join(runDir, "metrics.jsonl"));
  const charts = ["confusion", "per_class", ...(lines.length ? ["curves"] : [])]
    .flatMap((c) => [join(out, `${c}.svg`), join(out, `${c}.png`)]);
  const inRun = await realPath(out) === await realPath(runDir);
  await checkOutputs({
    outputs: charts,
    inputs: [dataPath, ...opened.map((t) => t.ckpt)],
    force: o.force || inRun,
    flag: "--out",
  });
  const rt = await Runtime.create();
  const scores = new Set(opened.map((t) => t.layoutScores));
  if (scores.size > 1) {
    throw new UsageError(
      `--ensemble: the runs read their data's scores differently (${[...scores].join(", ")})`,
    );
  }
  const file = await openInLayout(dataPath, dataPath, modelLayoutOf(opened[0]), [...scores][0]);
  try {
    const idx = split.includes(",")
      ? split.split(",").flatMap((s) => splitUnion(file, s))
      : splitUnion(file, split);
    const mode = {
      ...TEST_MODE,
      // the run's own test protocol unless the flags say otherwise
      clips: positiveInt("--clips", o.clips ?? String(run?.eval.clips ?? 1)),
      flipTest: o.flip ?? run?.eval.flip ?? false,
    };
    const batchSize = positiveInt("--batch-size", o.batchSize);
    const streams: { checkpoint: string; top1: number; scores: EvalScores }[] = [];
    for (const t of opened) {
      if (file.meta.classes.length !== t.mc.classes) {
        throw new UsageError(
          `${dataPath}: ${file.meta.classes.length} classes, ${t.ckpt}'s model has ${t.mc.classes}`,
        );
      }
      checkLayout(dataPath, layoutByName(file.meta.layout), modelLayoutOf(t));
      const model = buildModel(rt, t.mc, 0);
      await loadCheckpoint(rt, t.ckpt, model);
      // The run folder's config, else the checkpoint's own record of its input pipeline
      // (written since 2026-11), else what the model config alone implies.
      const spec: InputSpec = t.run
        ? inputSpecOf(t.run)
        : t.metadata.input
        ? JSON.parse(t.metadata.input)
        : legacySpec(t.mc, layoutByName(file.meta.layout), t.ckpt);
      const scores = await evaluateScores(rt, model, file, idx, spec, mode, batchSize);
      streams.push({ checkpoint: t.ckpt, top1: summarize(scores).top1, scores });
    }
    const r = summarize(ensemble(streams.map((s) => s.scores)));
    await Deno.mkdir(out, { recursive: true }).catch((e) => {
      throw writeError(out, e);
    });
    const title = `${basename(runDir)} (${basename(ckpt)})`;
    const pictures = await writePictures(out, r, file.meta.classes, lines, title);
    const result = {
      checkpoint: ckpt,
      ...(streams.length > 1
        ? { ensemble: streams.map(({ checkpoint, top1 }) => ({ checkpoint, top1 })) }
        : {}),
      data: dataPath,
      split,
      classes: file.meta.classes,
      ...r,
      pictures,
    };
    if (o.json) printJson(result);
    else {
      console.log(`${ckpt} on ${dataPath} [${split}], ${r.samples} samples x ${r.views} views`);
      if (streams.length > 1) {
        for (const s of streams) {
          console.log(`  ${s.checkpoint}: top-1 ${(s.top1 * 100).toFixed(2)}%`);
        }
        console.log(`ensemble of ${streams.length} (probabilities averaged):`);
      }
      console.log(
        `top-1 ${(r.top1 * 100).toFixed(2)}%  top-5 ${(r.top5 * 100).toFixed(2)}%  mean class ${
          (r.meanClassAccuracy * 100).toFixed(2)
        }%`,
      );
      const worst = r.perClass.map((a, k) => [a, k] as const).filter(([a]) => !Number.isNaN(a))
        .sort((a, b) => a[0] - b[0]).slice(0, 3);
      console.log(
        `hardest: ${
          worst.map(([a, k]) => `${file.meta.classes[k]} ${(a * 100).toFixed(0)}%`).join(", ")
        }`,
      );
      console.log(
        `wrote ${Object.values(pictures).filter(Boolean).map((p) => p!.svg).join(", ")} (and .png)`,
      );
    }
  } finally {
    await file.close();
  }
}

/** The evaluation's charts (SVG and PNG): confusion, per-class accuracy, the run's curves. */
async function writePictures(
  out: string,
  r: ReturnType<typeof summarize>,
  classes: string[],
  lines: unknown[],
  title: string,
) {
  const confusion = await writeChart(
    join(out, "confusion"),
    confusionSpec(r.confusion, classes, r.top1),
  );
  const perClass = await writeChart(join(out, "per_class"), perClassSpec(r.perClass, classes));
  const curves = lines.length
    ? await writeChart(join(out, "curves"), curvesSpec(lines as MetricsLine[], title))
    : null;
  return { confusion, perClass, curves };
}
