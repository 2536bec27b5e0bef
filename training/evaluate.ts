// Evaluation: multi-view (clips x flips) softmax averaging, top-1 / top-5, per-class and
// mean class accuracy, confusion matrix.
import { cast } from "../autograd/ops.ts";
import { noGrad } from "../autograd/tape.ts";
import {
  type BatchMode,
  deviceBatch,
  type HostBatch,
  inputShape,
  type InputSpec,
  rendererFor,
  samplesPerPass,
} from "../data/batches.ts";
import { BatchLoader } from "../data/loader.ts";
import type { SkeletonFile } from "../data/schema.ts";
import { type JointLayout, layoutByName } from "../data/layouts.ts";
import type { HeatmapRenderer } from "../kernels/heatmap.ts";
import type { ActionModel } from "../models/presets.ts";
import type { Runtime } from "../runtime/runtime.ts";

export interface EvalResult {
  samples: number;
  top1: number;
  top5: number;
  meanClassAccuracy: number;
  perClass: number[];
  confusion: number[][];
  views: number;
}

/** Class probabilities per sample (averaged over its views), in `indices` order. */
export interface EvalScores {
  /** samples x classes, row-major. */
  probs: Float64Array;
  labels: number[];
  classes: number;
  views: number;
}

/** Multi-view evaluation of one model: evaluateScores, summarised. */
export async function evaluate(...args: Parameters<typeof evaluateScores>): Promise<EvalResult> {
  return summarize(await evaluateScores(...args));
}

/** The models' probabilities averaged: the multi-stream ensembles of 2s-AGCN / CTR-GCN
 * (joint + bone ...), each stream scored on the same samples with its own input. */
export function ensemble(all: EvalScores[]): EvalScores {
  const [first] = all;
  for (const s of all) {
    if (s.classes !== first.classes || s.labels.join() !== first.labels.join()) {
      throw new Error("ensemble: the models were scored on different samples or classes");
    }
  }
  const probs = new Float64Array(first.probs.length);
  for (const s of all) s.probs.forEach((p, i) => probs[i] += p / all.length);
  return { probs, labels: first.labels, classes: first.classes, views: first.views };
}

export function summarize(s: EvalScores): EvalResult {
  const K = s.classes;
  const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  let hit1 = 0, hit5 = 0;
  const n = s.labels.length;
  for (let i = 0; i < n; i++) {
    const row = s.probs.subarray(i * K, (i + 1) * K);
    const order = [...row.keys()].sort((a, b) => row[b] - row[a]);
    const y = s.labels[i];
    confusion[y][order[0]]++;
    if (order[0] === y) hit1++;
    if (order.slice(0, 5).includes(y)) hit5++;
  }
  const perClass = confusion.map((row, k) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total ? row[k] / total : NaN;
  });
  const present = perClass.filter((v) => !Number.isNaN(v));
  return {
    samples: n,
    top1: n ? hit1 / n : 0,
    top5: n ? hit5 / n : 0,
    meanClassAccuracy: present.length ? present.reduce((a, b) => a + b, 0) / present.length : 0,
    perClass,
    confusion,
    views: s.views,
  };
}

/** Input rows (views) that fit in one storage binding: a 17 x 48 x 56 x 56 heatmap row is 10 MB. */
export function rowsThatFit(rt: Runtime, spec: InputSpec, file: SkeletonFile): number {
  const rowBytes = inputShape(spec, layoutByName(file.meta.layout), 1).reduce((a, b) => a * b) * 4;
  return Math.max(1, Math.floor(rt.device.limits.maxStorageBufferBindingSize / rowBytes));
}

/** Logits of every row (sample x view) of a host batch, at most `fit` rows per forward pass. */
async function forwardRows(
  rt: Runtime,
  model: ActionModel,
  hb: HostBatch,
  spec: InputSpec,
  layout: JointLayout,
  renderer: HeatmapRenderer | null,
  file: SkeletonFile,
  fit: number,
): Promise<Float32Array> {
  const rows = hb.samples * hb.views, K = file.meta.classes.length;
  const out = new Float32Array(rows * K);
  const per = spec.persons * spec.clipLen * layout.joints.length;
  for (let r0 = 0; r0 < rows; r0 += renderer ? fit : rows) {
    const r1 = renderer ? Math.min(rows, r0 + fit) : rows;
    const logits = rt.tidy(() =>
      noGrad(() => {
        const input = renderer
          ? renderer.render(
            hb.xy!.subarray(r0 * per * 2, r1 * per * 2),
            hb.score!.subarray(r0 * per, r1 * per),
            [r1 - r0, spec.persons, spec.clipLen, layout.joints.length],
          )
          : deviceBatch(rt, hb, file.meta, spec).input;
        return cast(model.forward(input), "f32"); // f16 under mixed precision
      })
    );
    out.set(await rt.read(logits), r0 * K);
    rt.dispose(logits);
  }
  return out;
}

/** Scores every sample of `indices`, in passes of at most `rows` input rows (views). */
export async function evaluateScores(
  rt: Runtime,
  model: ActionModel,
  file: SkeletonFile,
  indices: number[],
  spec: InputSpec,
  mode: BatchMode,
  rows: number,
): Promise<EvalScores> {
  const K = file.meta.classes.length;
  const scores: number[] = [], labels: number[] = [];
  let views = 1;
  model.train(false);
  // Passes of at most `rows` rows that fit the adapter; a sample whose views alone do not fit
  // (10 clips x 2 flips of a study-sized volume) has its views split over several passes.
  const fit = Math.min(rows, rowsThatFit(rt, spec, file));
  const loader = new BatchLoader(file, indices, spec, mode, {
    batchSize: samplesPerPass(fit, mode),
    shuffle: false,
    seed: 0,
    window: 1,
    prefetch: 1,
    dropLast: false,
  });
  const layout = layoutByName(file.meta.layout);
  const renderer = rendererFor(rt, spec, layout);
  try {
    for await (const hb of loader.epoch(0)) {
      views = hb.views;
      const l = await forwardRows(rt, model, hb, spec, layout, renderer, file, fit);
      for (let s = 0; s < hb.samples; s++) {
        const avg = new Float64Array(K);
        for (let v = 0; v < hb.views; v++) {
          const row = l.subarray((s * hb.views + v) * K, (s * hb.views + v + 1) * K);
          const m = Math.max(...row);
          let z = 0;
          for (let k = 0; k < K; k++) z += Math.exp(row[k] - m);
          // With flipped test views, view v = 2c + 1 is a mirror image: its class k means
          // the dataset's flipLabels[k].
          const mirror = mode.flipTest && v % 2 === 1 ? file.meta.flipLabels : undefined;
          for (let k = 0; k < K; k++) {
            avg[mirror ? mirror[k] : k] += Math.exp(row[k] - m) / z / hb.views;
          }
        }
        scores.push(...avg);
        labels.push(hb.labels[s]);
      }
    }
  } finally {
    renderer?.dispose();
    model.train(true);
  }
  return { probs: Float64Array.from(scores), labels, classes: K, views };
}
