// `heatformer bench data`: sequences/s read from Arrow, host pipeline samples/s, and heatmap
// volumes/s at the study's shape (17 x 48 x 56 x 56) on the GPU against the TypeScript
// reference on the CPU, in one run.
import { DEFAULT_INPUT, TRAIN_MODE } from "../data/batches.ts";
import { SYNTH_DEFAULT, synthMeta, synthRecords } from "../data/importers/synth.ts";
import { COCO17 } from "../data/layouts.ts";
import { BatchLoader } from "../data/loader.ts";
import type { Clip2D } from "../data/clip.ts";
import { SkeletonFile, writeSkeletonArrow } from "../data/schema.ts";
import { HeatmapRenderer } from "../kernels/heatmap.ts";
import { heatmapReference } from "../kernels/heatmap_reference.ts";
import { Rng } from "../layers/init.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { timeGpu } from "./timing.ts";

export interface DataBenchReport {
  arrowSequencesPerSec: number;
  pipelineSamplesPerSec: number;
  gpuVolumesPerSec: number;
  cpuVolumesPerSec: number;
  /** Slowest and fastest of the CPU reference's four timed rounds. */
  cpuRange: [number, number];
  speedup: number;
  shape: number[];
  batch: number;
}

function randomClips(n: number, rng: Rng, T: number): Clip2D[] {
  return Array.from({ length: n }, () => {
    const V = 17, M = 2;
    const xy = new Float32Array(M * T * V * 2), score = new Float32Array(M * T * V);
    for (let i = 0; i < score.length; i++) {
      xy[2 * i] = 8 + rng.uniform() * 40;
      xy[2 * i + 1] = 4 + rng.uniform() * 48;
      score[i] = i < score.length / 2 || rng.uniform() < 0.5 ? 0.3 + 0.7 * rng.uniform() : 0;
    }
    return { persons: M, frames: T, joints: V, xy, score, width: 56, height: 56 };
  });
}

export async function benchData(
  rt: Runtime,
  o: { batch?: number; log?: (l: string) => void } = {},
): Promise<DataBenchReport> {
  const log = o.log ?? (() => {});
  const dir = await Deno.makeTempDir();
  const path = `${dir}/synth.arrow`;
  await writeSkeletonArrow(
    path,
    synthMeta(),
    synthRecords({ ...SYNTH_DEFAULT, subjects: 16, repetitions: 3 }),
  );
  const f = await SkeletonFile.open(path);
  // Arrow: decode every record batch.
  let t0 = performance.now(), n = 0;
  for (let b = 0; b < f.numBatches; b++) n += (await f.readBatch(b)).length;
  const arrowRate = n / ((performance.now() - t0) / 1000);
  log(`arrow read: ${arrowRate.toFixed(0)} sequences/s (${n} sequences)`);
  // Host pipeline: sampling, compaction, crop, flip for 48-frame clips.
  const spec = DEFAULT_INPUT; // joint heatmaps, 48 frames of 56 x 56, 2 persons
  const loader = new BatchLoader(f, [...Array(f.size).keys()], spec, TRAIN_MODE, {
    batchSize: 32,
    shuffle: true,
    seed: 1,
    window: 4,
    prefetch: 2,
    dropLast: false,
  });
  t0 = performance.now();
  n = 0;
  for await (const hb of loader.epoch(0)) n += hb.samples;
  const pipeRate = n / ((performance.now() - t0) / 1000);
  log(`host pipeline (read + sample + compact + crop + flip): ${pipeRate.toFixed(0)} samples/s`);
  await f.close();
  await Deno.remove(dir, { recursive: true });

  // Heatmaps at the study's shape: GPU renderer vs the TypeScript reference.
  const B = o.batch ?? 8, T = 48;
  // Steady state of the persistent renderer: alternate two independent random batches, so
  // every render erases the previous batch's windows and draws new ones elsewhere.
  const batches = [3, 4].map((seed) => {
    const clips = randomClips(B, new Rng(seed), T);
    const xy = new Float32Array(B * 2 * T * 17 * 2), sc = new Float32Array(B * 2 * T * 17);
    clips.forEach((c, i) => {
      xy.set(c.xy, i * c.xy.length);
      sc.set(c.score, i * c.score.length);
    });
    return { clips, xy, sc };
  });
  const clips = batches[0].clips;
  const renderer = new HeatmapRenderer(rt, { size: 56, sigma: 0.6, joints: true, limbs: [] });
  let flip = 0;
  const render = () => {
    const b = batches[flip++ % 2];
    renderer.render(b.xy, b.sc, [B, 2, T, 17]);
  };
  // Warm up both kernels (the first batch draws, later ones erase and draw) before timing.
  for (let w = 0; w < 3; w++) render();
  await rt.sync();
  const g = await timeGpu(rt, render, { minMs: 500 });
  const gpuRate = B / (g.ms / 1000);
  // The reference draws into one reused volume, zeroing it first, as a CPU loader with its
  // own batch buffer would. Given a fresh 10 MB array per clip instead, its rate swung
  // between 250 and 1,200 volumes/s from run to run with V8's collection of those arrays.
  // Warm it for a second, then report the mean of the middle two of four 500 ms rounds.
  const volume = new Float32Array(17 * T * 56 * 56);
  const cpuRound = (ms: number) => {
    const r0 = performance.now();
    let done = 0;
    while (performance.now() - r0 < ms) {
      for (const c of clips) {
        heatmapReference(c, COCO17, { size: 56, sigma: 0.6, joints: true, limbs: false }, volume);
      }
      done += B;
    }
    return done / ((performance.now() - r0) / 1000);
  };
  cpuRound(1000);
  const rounds = [0, 1, 2, 3].map(() => cpuRound(500)).sort((a, b) => a - b);
  const cpuRate = (rounds[1] + rounds[2]) / 2;
  log(
    `heatmaps 17x48x56x56: GPU ${gpuRate.toFixed(0)} volumes/s, CPU reference ${
      cpuRate.toFixed(0)
    } volumes/s (${rounds[0].toFixed(0)}-${rounds[3].toFixed(0)}; ${
      (gpuRate / cpuRate).toFixed(1)
    }x)`,
  );
  renderer.dispose();
  return {
    arrowSequencesPerSec: arrowRate,
    pipelineSamplesPerSec: pipeRate,
    gpuVolumesPerSec: gpuRate,
    cpuVolumesPerSec: cpuRate,
    cpuRange: [rounds[0], rounds[3]],
    speedup: gpuRate / cpuRate,
    shape: [17, 48, 56, 56],
    batch: B,
  };
}
