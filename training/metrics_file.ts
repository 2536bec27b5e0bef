// metrics.jsonl: one line per epoch, appended after the epoch's validation. A line torn by a
// kill or a full disk is the last one and has no newline: a resume drops it with a warning
// (the epoch is trained again). Any other damaged line is an error naming the file and line.
export interface EpochMetrics {
  /** The run that wrote the line (absent in lines from before run ids). */
  runId?: string;
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valAccuracy: number;
  /** Pretraining (run.objective motion3d): the validation MPJPE (crop units). */
  valError?: number;
  lr: number;
  samplesPerSec: number;
  seconds: number;
  /** Optimiser steps skipped so far for non-finite gradients, and the loss scale (f16). */
  skippedSteps: number;
  lossScale: number;
  /** Mean training loss per logging interval of `lossInterval` optimiser steps. */
  lossCurve: number[];
  lossInterval: number;
  /** Unix time (seconds) at the end of the epoch. */
  time: number;
}

export interface MetricsRead {
  lines: EpochMetrics[];
  /** The text of a torn last line that was dropped ("" when none). */
  torn: string;
}

/** Parses metrics.jsonl; a torn last line is returned apart, any other bad line throws. */
export function parseMetrics(text: string, path: string): MetricsRead {
  const raw = text.split("\n");
  const complete = text.endsWith("\n") || text === "";
  const lines: EpochMetrics[] = [];
  let torn = "";
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i];
    if (!line.trim()) continue;
    const last = i === raw.length - 1;
    try {
      const m = JSON.parse(line);
      if (typeof m?.epoch !== "number") throw new Error("no epoch number");
      lines.push(m as EpochMetrics);
    } catch (e) {
      if (last && !complete) {
        torn = line;
        continue;
      }
      throw new Error(
        `${path}:${i + 1}: damaged metrics record (${(e as Error).message}); the run's ` +
          "checkpoints are intact: remove or fix that line",
      );
    }
  }
  return { lines, torn };
}

/** Reads a run's metrics.jsonl ("" when the file is missing). */
export async function readMetrics(path: string): Promise<MetricsRead> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return parseMetrics(text, path);
}
