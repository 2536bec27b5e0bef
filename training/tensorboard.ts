// A run's TensorBoard event file: the hyper-parameters (hparams dashboard), then per epoch the
// training loss per logging interval and the epoch's scalars, at the global optimiser step,
// appended and flushed as the run goes (`tensorboard --logdir runs/` watches it live). It is
// a function of config.json and metrics.jsonl: a resumed run rewrites it from the metrics it
// kept, so its curves continue without duplicates.
import { basename, join } from "node:path";
import {
  fileVersionEvent,
  type HParam,
  scalarsEvent,
  sessionEndEvent,
  sessionStartEvent,
} from "../io/tfevents.ts";
import type { ModelConfig } from "../models/config.ts";
import { effectiveLr, type Experiment } from "./experiment.ts";
import type { EvalResult } from "./evaluate.ts";
import type { EpochMetrics } from "./run_folder.ts";

export const EVENTS_PREFIX = "events.out.tfevents.";

/** The run's event file: the one in the folder, else a new name in TensorBoard's pattern. */
export async function eventFile(dir: string): Promise<string> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.startsWith(EVENTS_PREFIX) && !e.name.endsWith(".tmp")) {
      return join(dir, e.name);
    }
  }
  const host = Deno.hostname().replace(/[^\w.-]/g, "_");
  return join(dir, `${EVENTS_PREFIX}${Math.floor(Date.now() / 1000)}.${host}.heatformer`);
}

/** What the hparams dashboard compares runs by. */
export function hparamsOf(cfg: Experiment, mc: ModelConfig): Record<string, HParam> {
  return {
    model: cfg.model.preset,
    recipe: cfg.run.recipe,
    family: mc.family,
    width: mc.width,
    depth: mc.depth,
    input: cfg.input.kind,
    heatmap: cfg.input.heatmap,
    clip_len: cfg.input.clipLen,
    size: cfg.input.size,
    persons: cfg.input.persons,
    optimizer: cfg.optim.optimizer,
    lr: effectiveLr(cfg),
    weight_decay: cfg.optim.weightDecay,
    schedule: cfg.schedule.kind,
    batch_size: cfg.optim.batchSize,
    epochs: cfg.run.epochs,
    label_smoothing: cfg.optim.labelSmoothing,
    rotation: cfg.augment.rotation,
    noise: cfg.augment.noise,
    shift: cfg.augment.shift,
    flip: cfg.augment.flip,
    seed: cfg.run.seed,
    data: cfg.data.path ? basename(cfg.data.path) : "built-in",
    split: cfg.data.split,
  };
}

/** One epoch: the loss per logging interval at its step, then the epoch's scalars at its end. */
export function epochRecords(m: EpochMetrics, stepsPerEpoch: number): Uint8Array[] {
  const first = (m.epoch - 1) * stepsPerEpoch;
  const time = m.time ?? 0; // epochs written before the event files had no time
  const records = (m.lossCurve ?? []).map((loss, k) =>
    scalarsEvent(
      { "train/loss_step": loss },
      first + Math.min((k + 1) * m.lossInterval, stepsPerEpoch),
      time,
    )
  );
  records.push(scalarsEvent(
    {
      "train/loss": m.trainLoss,
      "train/top1": m.trainAccuracy,
      "val/top1": m.valAccuracy,
      "lr": m.lr,
      "samples_per_sec": m.samplesPerSec,
      "epoch": m.epoch,
    },
    m.epoch * stepsPerEpoch,
    time,
  ));
  return records;
}

/** The final evaluation and the end of the session. */
export function finalRecords(r: EvalResult, step: number): Uint8Array[] {
  const now = Date.now() / 1000;
  return [
    scalarsEvent(
      {
        "test/top1": r.top1,
        "test/top5": r.top5,
        "test/mean_class_accuracy": r.meanClassAccuracy,
      },
      step,
      now,
    ),
    sessionEndEvent(1, now),
  ];
}

/**
 * Writes the whole file (version, hparams, every epoch in `metrics`) through a temporary file
 * and a rename: a new run's header, or a resumed run's history up to its checkpoint.
 */
export async function writeEvents(
  dir: string,
  hparams: Record<string, HParam>,
  metrics: EpochMetrics[],
  stepsPerEpoch: number,
): Promise<void> {
  const path = await eventFile(dir);
  const start = metrics[0]?.time ? metrics[0].time - metrics[0].seconds : Date.now() / 1000;
  const records = [
    fileVersionEvent(start),
    sessionStartEvent(hparams, basename(dir), start),
    ...metrics.flatMap((m) => epochRecords(m, stepsPerEpoch)),
  ];
  const bytes = new Uint8Array(records.reduce((a, r) => a + r.length, 0));
  let at = 0;
  for (const r of records) (bytes.set(r, at), at += r.length);
  await Deno.writeFile(`${path}.tmp`, bytes);
  await Deno.rename(`${path}.tmp`, path);
}

/** Appends records and flushes them to disk (a live run can be watched). */
export async function appendEvents(dir: string, records: Uint8Array[]): Promise<void> {
  const f = await Deno.open(await eventFile(dir), { append: true, create: true });
  try {
    for (const r of records) {
      for (let at = 0; at < r.length;) at += await f.write(r.subarray(at));
    }
    await f.syncData();
  } finally {
    f.close();
  }
}
