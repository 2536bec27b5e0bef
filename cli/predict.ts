// `heatformer predict RUN|CKPT INPUT... [--split S] [--top-k 5] [--clips N] [--flip] [--json]`:
// class names with probabilities for unlabeled sequences, through the run's own input pipeline
// and test protocol. INPUT: an Arrow file (every sample, or --split), or a single sequence: a
// .npy of T x V x C or M x T x V x C keypoints in the model's layout (or --layout), a
// Kinetics-skeleton JSON, an OpenPose clip folder, or a video (MoveNet's poses, one prediction
// per --window, cli/predict_video.ts).
import { basename } from "node:path";
import { type BatchMode, type InputSpec, TEST_MODE } from "../data/batches.ts";
import { resolveLayoutArg } from "../data/layout_file.ts";
import { COCO17, type JointLayout, layoutByName } from "../data/layouts.ts";
import { kineticsRecord, openposeRecord } from "../data/importers/openpose.ts";
import { DataError, type SkeletonRecord, writeSkeletonArrow } from "../data/schema.ts";
import { loadCheckpoint } from "../io/checkpoint.ts";
import { readNpy } from "../io/npy.ts";
import { buildModel } from "../models/presets.ts";
import { Runtime } from "../runtime/runtime.ts";
import { evaluateScores } from "../training/evaluate.ts";
import { inputSpecOf } from "../training/setup.ts";
import { checkLayout, modelLayoutOf, openInLayout, openTarget } from "./eval.ts";
import type { ScoreOrder } from "../data/layout_map.ts";
import { positiveInt } from "./output.ts";
import { UsageError } from "./output.ts";
import { predictRaw } from "./predict_raw.ts";
import { type VideoFlags, VideoInputs } from "./predict_video.ts";

export interface PredictFlags extends VideoFlags {
  raw?: boolean;
  split?: string;
  topK: string;
  clips?: string;
  flip?: boolean;
  layout?: string;
  batchSize: string;
  json?: boolean;
}

export interface Prediction {
  name: string;
  input: string;
  /** a video window's time range, seconds */
  start?: number;
  end?: number;
  top: { class: string; label: number; prob: number }[];
}

/** A single sequence as a record: a .npy (T x V x C or M x T x V x C in `layout`), a
 * Kinetics-skeleton JSON, or an OpenPose clip folder; with its layout. */
async function sequenceRecord(
  path: string,
  layout: JointLayout | null,
): Promise<{ record: SkeletonRecord; layout: JointLayout; channels: 2 | 3 }> {
  const name = basename(path).replace(/\.(npy|json)$/, "");
  if (path.endsWith(".json")) {
    let json: unknown;
    try {
      json = JSON.parse(await Deno.readTextFile(path));
    } catch (e) {
      throw new DataError(path, null, `not a readable JSON file (${(e as Error).message})`);
    }
    const r = kineticsRecord(json, path, 0, "predict", 2);
    if ("skip" in r) throw new DataError(path, name, r.reason);
    return { record: r, layout: layoutByName("openpose18"), channels: 2 };
  }
  if ((await Deno.stat(path).catch(() => null))?.isDirectory) {
    const { record, V } = await openposeRecord(path, 0, ["predict"], 2);
    if ("skip" in record) throw new DataError(path, name, record.reason);
    return { record, layout: layoutByName(V === 25 ? "openpose25" : "openpose18"), channels: 2 };
  }
  if (!layout) {
    throw new UsageError(`${path}: give its layout with --layout (the checkpoint records none)`);
  }
  const { shape, data } = await readNpy(path);
  const s = shape.length === 3 ? [1, ...shape] : shape;
  const [M, T, V, C] = s;
  if (s.length !== 4 || (C !== 2 && C !== 3)) {
    throw new DataError(
      path,
      null,
      `shape (${shape.join(", ")}): expected T x V x C or M x T x V x C keypoints, C = 2 or 3`,
    );
  }
  if (V !== layout.joints.length) {
    throw new DataError(
      path,
      null,
      `${V} joints, the layout ${layout.name} has ${layout.joints.length} (--layout)`,
    );
  }
  const record: SkeletonRecord = {
    name,
    label: 0,
    subject: 0,
    camera: 0,
    setup: 0,
    replication: 0,
    frames: T,
    persons: M,
    keypoint: data,
    score: null,
    keypoint2d: null,
    imgShape: null,
    splits: ["predict"],
  };
  return { record, layout, channels: C as 2 | 3 };
}

/** A single sequence as a one-sample Arrow file with the model's classes. */
async function sequenceAsArrow(
  path: string,
  layout: JointLayout | null,
  classes: string[],
  dir: string,
): Promise<string> {
  const seq = await sequenceRecord(path, layout);
  const out = `${dir}/${basename(path)}.arrow`;
  await writeSkeletonArrow(
    out,
    {
      dataset: "predict",
      layout: seq.layout.name,
      channels: seq.channels,
      classes,
      keypointDtype: "f32",
      batchSize: 16,
    },
    [seq.record],
    path,
  );
  return out;
}

/** The top k classes of each row of probabilities. */
export function topK(probs: Float64Array, classes: string[], k: number) {
  const K = classes.length, out = [];
  for (let i = 0; i < probs.length / K; i++) {
    const row = probs.subarray(i * K, (i + 1) * K);
    const order = [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, k);
    out.push(order.map((c) => ({ class: classes[c], label: c, prob: row[c] })));
  }
  return out;
}

/** What predicting an Arrow file needs: the model, its classes and layout, its test protocol. */
interface Predictor {
  rt: Runtime;
  model: ReturnType<typeof buildModel>;
  /** the checkpoint's class names, else each file's own */
  classes: string[] | null;
  classCount: number;
  modelLayout: JointLayout | null;
  /** how the data's scores follow a conversion to the model's layout */
  scores: ScoreOrder;
  spec: InputSpec;
  mode: BatchMode;
  rows: number;
  k: number;
}

/** The top-k predictions of an Arrow file's samples (with `split`, of that split's). */
async function predictFile(
  p: Predictor,
  path: string,
  input: string,
  split?: string,
): Promise<Prediction[]> {
  const file = await openInLayout(path, input, p.modelLayout, p.scores);
  try {
    const names = p.classes ?? file.meta.classes;
    if (names.length !== p.classCount) {
      throw new UsageError(`${input}: ${names.length} classes, the model has ${p.classCount}`);
    }
    // sorted: the loader keeps this order without shuffling, so score i is sample idx[i]
    const idx = (split ? [...file.split(split)] : file.index.names.map((_, i) => i))
      .sort((a, b) => a - b);
    const scores = await evaluateScores(p.rt, p.model, file, idx, p.spec, p.mode, p.rows);
    return topK(scores.probs, names, p.k).map((top, i) => ({
      name: file.index.names[idx[i]],
      input,
      top,
    }));
  } finally {
    await file.close();
  }
}

export async function predictCommand(
  target: string,
  inputs: string[],
  o: PredictFlags,
): Promise<void> {
  const k = positiveInt("--top-k", o.topK);
  const t = await openTarget(target);
  const classes: string[] | null = t.metadata.classes ? JSON.parse(t.metadata.classes) : null;
  const modelLayout = modelLayoutOf(t);
  const spec = t.run ? inputSpecOf(t.run) : JSON.parse(t.metadata.input ?? "null");
  if (!spec) {
    throw new UsageError(`${t.ckpt}: records no input pipeline; predict with its run folder`);
  }
  const mode = {
    ...TEST_MODE,
    clips: o.clips ? positiveInt("--clips", o.clips) : t.run?.eval.clips ?? 1,
    flipTest: o.flip ?? t.run?.eval.flip ?? false,
  };
  const rt = await Runtime.create();
  const model = buildModel(rt, t.mc, 0);
  await loadCheckpoint(rt, t.ckpt, model);
  const rows = positiveInt("--batch-size", o.batchSize);
  if (o.raw) {
    for (const input of inputs) {
      for (const p of await predictRaw(rt, model, t.mc, input, classes ?? [], k, rows)) {
        if (o.json) console.log(JSON.stringify(p));
        else {console.log(`${p.input}[${p.name}]: ${
            p.top.map((c) => `${c.class} ${(c.prob * 100).toFixed(1)}%`).join(", ")
          }`);}
      }
    }
    return;
  }
  // each prediction printed as it is made: a live video's windows while it plays
  const print = (p: Prediction) => {
    if (o.json) return console.log(JSON.stringify(p));
    const best = p.top.map((c) => `${c.class} ${(c.prob * 100).toFixed(1)}%`).join(", ");
    console.log(`${p.name}: ${best}`);
  };
  const ctx: Predictor = {
    rt,
    model,
    classes,
    modelLayout,
    spec,
    mode,
    rows,
    k,
    classCount: t.mc.classes,
    scores: t.layoutScores,
  };
  const tmp = await Deno.makeTempDir({ prefix: "heatformer-predict-" });
  const videos = new VideoInputs(o, !!o.json);
  try {
    for (const input of inputs) {
      const single = !input.endsWith(".arrow");
      if (single && !classes) {
        throw new UsageError(
          `${input}: ${t.ckpt} records no class names (written before predict); ` +
            "convert the sequence into an Arrow file",
        );
      }
      if (await videos.isVideo(input)) {
        checkLayout(input, COCO17, modelLayout); // before any frame is decoded (or converts)
        for await (const w of videos.windows(input, classes!, tmp)) {
          for (const p of await predictFile(ctx, w.path, input)) {
            print({ ...p, start: w.start, end: w.end });
          }
        }
        if (videos.interrupted) break;
      } else if (single) {
        const layout = o.layout ? await resolveLayoutArg(o.layout) : modelLayout;
        (await predictFile(ctx, await sequenceAsArrow(input, layout, classes!, tmp), input))
          .forEach(
            print,
          );
      } else (await predictFile(ctx, input, input, o.split)).forEach(print);
    }
  } finally {
    videos.dispose();
    await Deno.remove(tmp, { recursive: true });
  }
  if (videos.interrupted) {
    console.error("heatformer: interrupted (SIGINT): the windows before it were predicted");
    Deno.exit(130);
  }
}
