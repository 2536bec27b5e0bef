// `heatformer eval RUN_DIR|CHECKPOINT --data FILE --split NAME`: top-1/5, per-class and
// mean class accuracy, confusion matrix, PoseConv3D's multi-clip (+ flip) test, --json, and
// PNGs of the confusion matrix and the training curves.
import { dirname, join } from "node:path";
import { SkeletonFile } from "../data/schema.ts";
import { type JointLayout, layoutByName } from "../data/layouts.ts";
import { heatmapChannels } from "../data/pipeline.ts";
import { CheckpointError, loadCheckpoint, readCheckpoint } from "../io/checkpoint.ts";
import { encodePng } from "../io/png.ts";
import type { ModelConfig } from "../models/config.ts";
import { buildModel } from "../models/presets.ts";
import { Runtime } from "../runtime/runtime.ts";
import { type InputSpec, TEST_MODE } from "../data/batches.ts";
import {
  configFields,
  DEFAULT_RUN,
  type RunConfig,
  splitNames,
  validateConfig,
} from "../training/config.ts";
import { ensemble, type EvalScores, evaluateScores, summarize } from "../training/evaluate.ts";
import { builtinDataset, inputSpecOf } from "../training/trainer.ts";
import { printJson, UsageError } from "./output.ts";
import { positiveInt } from "./data.ts";

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

/** A run folder (its best checkpoint) or a checkpoint file, with the run's config if any. */
export async function openTarget(target: string) {
  const isDir = (await Deno.stat(target).catch(() => null))?.isDirectory ?? false;
  const ckpt = isDir ? join(target, "best.safetensors") : target;
  const runDir = isDir ? target : dirname(target);
  const st = await readCheckpoint(ckpt);
  if (!st.metadata.config) {
    throw new CheckpointError(
      `${ckpt}: no model configuration in its metadata (not a heatformer checkpoint)`,
    );
  }
  const mc = JSON.parse(st.metadata.config) as ModelConfig;
  let run: RunConfig | null = null;
  try {
    const raw = JSON.parse(await Deno.readTextFile(join(runDir, "config.json")));
    run = validateConfig({ ...DEFAULT_RUN, ...configFields(raw) });
  } catch {
    run = null;
  }
  return { ckpt, runDir, metadata: st.metadata, mc, run };
}

export async function evalCommand(
  target: string,
  o: {
    data?: string;
    split?: string;
    clips: string;
    flip?: boolean;
    batchSize: string;
    json?: boolean;
    out?: string;
    ensemble?: string;
  },
): Promise<void> {
  const targets = [target, ...(o.ensemble ? o.ensemble.split(",").filter(Boolean) : [])];
  const opened = [];
  for (const t of targets) opened.push(await openTarget(t));
  const { ckpt, runDir, run, metadata } = opened[0];
  // The data and split: flags, else the run folder's config (the built-in dataset regenerated
  // when its cache is gone), else what the checkpoint itself records.
  const recorded = metadata.data
    ? JSON.parse(metadata.data) as { path: string; split: string }
    : null;
  const dataPath = o.data ?? (run ? run.data ?? await builtinDataset(runDir) : recorded?.path);
  if (!dataPath) {
    throw new UsageError("--data: which Arrow file to evaluate on (the checkpoint does not say)");
  }
  const protocol = run?.split ?? recorded?.split;
  const split = o.split ?? (protocol ? splitNames(protocol)[1] : undefined);
  if (!split) throw new UsageError("--split: which split to evaluate");
  const rt = await Runtime.create();
  const file = await SkeletonFile.open(dataPath);
  try {
    const idx = split.includes(",")
      ? split.split(",").flatMap((s) => file.split(s))
      : file.split(split);
    const mode = {
      ...TEST_MODE,
      clips: positiveInt("--clips", o.clips),
      flipTest: !!o.flip,
    };
    const batchSize = positiveInt("--batch-size", o.batchSize);
    const streams: { checkpoint: string; top1: number; scores: EvalScores }[] = [];
    for (const t of opened) {
      if (file.meta.classes.length !== t.mc.classes) {
        throw new UsageError(
          `${dataPath}: ${file.meta.classes.length} classes, ${t.ckpt}'s model has ${t.mc.classes}`,
        );
      }
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
    const out = o.out ?? runDir;
    await Deno.mkdir(out, { recursive: true });
    const cmPath = join(out, "confusion.png");
    await Deno.writeFile(cmPath, confusionPng(r.confusion));
    let curves: string | null = null;
    try {
      const lines = (await Deno.readTextFile(join(runDir, "metrics.jsonl"))).trim().split("\n")
        .filter(Boolean).map((l) => JSON.parse(l));
      if (lines.length) {
        curves = join(out, "curves.png");
        await Deno.writeFile(curves, curvesPng(lines));
      }
    } catch { /* no metrics beside the checkpoint */ }
    const result = {
      checkpoint: ckpt,
      ...(streams.length > 1
        ? { ensemble: streams.map(({ checkpoint, top1 }) => ({ checkpoint, top1 })) }
        : {}),
      data: dataPath,
      split,
      classes: file.meta.classes,
      ...r,
      pictures: { confusion: cmPath, curves },
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
      console.log(`wrote ${cmPath}${curves ? ` and ${curves}` : ""}`);
    }
  } finally {
    await file.close();
  }
}

/** Row-normalised confusion matrix, one 12 px cell per pair, white -> blue. */
export function confusionPng(cm: number[][]): Uint8Array {
  const K = cm.length, cell = Math.max(4, Math.min(24, Math.floor(720 / K))), W = K * cell;
  const img = new Uint8Array(W * W * 3).fill(255);
  cm.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((v, j) => {
      const f = v / total;
      const c = [255 - f * 225, 255 - f * 155, 255 - f * 30].map(Math.round);
      for (let y = 0; y < cell - 1; y++) {
        for (let x = 0; x < cell - 1; x++) img.set(c, ((i * cell + y) * W + j * cell + x) * 3);
      }
    });
  });
  return encodePng(img, W, W);
}

/** Training loss (red, left axis scaled to its max) and train / val accuracy (green / blue). */
export function curvesPng(
  m: { epoch: number; trainLoss: number; trainAccuracy: number; valAccuracy: number }[],
): Uint8Array {
  const W = 640, H = 360, pad = 30;
  const img = new Uint8Array(W * H * 3).fill(255);
  const px = (x: number, y: number, c: number[]) => {
    if (x >= 0 && y >= 0 && x < W && y < H) img.set(c, (Math.round(y) * W + Math.round(x)) * 3);
  };
  for (let x = pad; x < W - pad; x++) px(x, H - pad, [120, 120, 120]);
  for (let y = pad; y < H - pad; y++) px(pad, y, [120, 120, 120]);
  const maxLoss = Math.max(...m.map((e) => e.trainLoss).filter(Number.isFinite), 1e-6);
  const X = (i: number) => pad + ((W - 2 * pad) * i) / Math.max(1, m.length - 1);
  const Y = (v: number) => H - pad - (H - 2 * pad) * v;
  const series: [(e: (typeof m)[number]) => number, number[]][] = [
    [(e) => e.trainLoss / maxLoss, [220, 40, 40]],
    [(e) => e.trainAccuracy, [40, 160, 60]],
    [(e) => e.valAccuracy, [40, 80, 220]],
  ];
  for (const [f, c] of series) {
    for (let i = 0; i + 1 < m.length; i++) {
      const a = f(m[i]), b = f(m[i + 1]);
      if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
      for (let s = 0; s <= 40; s++) {
        const u = s / 40;
        for (const d of [-1, 0, 1]) px(X(i) + u * (X(i + 1) - X(i)), Y(a + u * (b - a)) + d, c);
      }
    }
  }
  return encodePng(img, W, H);
}
