// The training loop, in nanoGPT's order: learning rate from a pure function; per step, the
// batch rendered straight into the model's input, forward, backward (micro-batches
// accumulate), clip and update, all recorded into one command buffer; loss and accuracy
// accumulate on the GPU and are read once per epoch; evaluate, log, checkpoint (atomic).
// An interrupted run resumes exactly: the data order, the augmentation and the dropout
// seeds are functions of (seed, epoch, batch).
import { dirname, join } from "node:path";
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import { type InputSpec, rendererFor, samplesPerPass, TEST_MODE } from "../data/batches.ts";
import { SYNTH_DEFAULT, synthMeta, synthRecords } from "../data/importers/synth.ts";
import { layoutByName } from "../data/layouts.ts";
import { BatchLoader } from "../data/loader.ts";
import { heatmapChannels } from "../data/pipeline.ts";
import { SkeletonFile, writeSkeletonArrow } from "../data/schema.ts";
import { loadCheckpoint, saveCheckpoint } from "../io/checkpoint.ts";
import { map } from "../kernels/map.ts";
import { accumulateCorrect } from "../kernels/metrics.ts";
import type { ModelConfig } from "../models/config.ts";
import { buildModel, parameterCount, presetByName } from "../models/presets.ts";
import { StepGraphs } from "../runtime/graph.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { type RunConfig, splitNames } from "./config.ts";
import { type EvalResult, evaluate } from "./evaluate.ts";
import { Optimizer } from "./optimizer.ts";
import { learningRate, type Schedule } from "./schedule.ts";

export interface EpochMetrics {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valAccuracy: number;
  lr: number;
  samplesPerSec: number;
  seconds: number;
  /** Optimiser steps skipped so far for non-finite gradients, and the loss scale (f16). */
  skippedSteps: number;
  lossScale: number;
}

export interface TrainSummary {
  run: string;
  model: string;
  parameters: number;
  epochs: number;
  bestEpoch: number;
  bestValAccuracy: number;
  final: EvalResult & { clips: number; flip: boolean };
  samplesPerSec: number;
  seconds: number;
  interrupted: boolean;
}

export class TrainingStopped extends Error {}

export interface TrainHooks {
  log?: (line: string) => void;
  progress?: (epoch: number, done: number, total: number, samplesPerSec: number) => void;
  /** Checked after every step; true stops the run (Ctrl-C), saving `last`. */
  shouldStop?: () => boolean;
}

/** The built-in dataset, generated once per seed into a cache beside the runs. */
export async function builtinDataset(outDir: string): Promise<string> {
  const cache = join(dirname(outDir), ".cache");
  await Deno.mkdir(cache, { recursive: true });
  const path = join(cache, `synth-${SYNTH_DEFAULT.seed}.arrow`);
  try {
    await Deno.stat(path);
  } catch {
    await writeSkeletonArrow(path, synthMeta(), synthRecords(SYNTH_DEFAULT));
  }
  return path;
}

export function modelConfigFor(cfg: RunConfig, file: SkeletonFile): ModelConfig {
  const preset = presetByName(cfg.model).config;
  const layout = layoutByName(file.meta.layout);
  const spec = inputSpecOf(cfg);
  const c: ModelConfig = {
    ...preset,
    classes: file.meta.classes.length,
    input: {
      kind: cfg.input,
      channels: cfg.input === "heatmap" ? heatmapChannels(layout, spec) : layout.joints.length,
      frames: cfg.clipLen,
      size: cfg.size,
      persons: cfg.persons,
    },
  };
  if (cfg.width) c.width = cfg.width;
  if (cfg.depth) c.depth = c.spatialDepth = c.temporalDepth = cfg.depth;
  if (cfg.heads) c.heads = cfg.heads;
  if (cfg.dropout !== undefined) c.dropout = cfg.dropout;
  if (cfg.dropPath !== undefined) c.dropPath = cfg.dropPath;
  if (cfg.tubelet) c.tubelet = cfg.tubelet;
  if (c.family.startsWith("vivit") && cfg.input !== "heatmap") {
    throw new Error(`--input: ${cfg.model} takes heatmaps (tubelets), not ${cfg.input}`);
  }
  if (c.width % c.heads) {
    throw new Error(`--heads: ${c.heads} does not divide the width ${c.width}`);
  }
  return c;
}

export function inputSpecOf(cfg: RunConfig): InputSpec {
  return {
    kind: cfg.input,
    clipLen: cfg.clipLen,
    size: cfg.size,
    sigma: cfg.sigma,
    joints: cfg.heatmap !== "limb",
    limbs: cfg.heatmap !== "joint",
    persons: cfg.persons,
    viewAlign: cfg.viewAlign,
    bones: cfg.bones,
    motion: cfg.motion,
  };
}

async function appendLine(path: string, obj: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(obj) + "\n", { append: true });
}

export async function train(
  rt: Runtime,
  cfg: RunConfig,
  resume: boolean,
  hooks: TrainHooks = {},
): Promise<TrainSummary> {
  const log = hooks.log ?? (() => {});
  const out = cfg.out;
  await Deno.mkdir(out, { recursive: true });
  const dataPath = cfg.data ?? await builtinDataset(out);
  const file = await SkeletonFile.open(dataPath);
  try {
    const [trainSplit, valSplit] = splitNames(cfg.split);
    const trainIdx = file.split(trainSplit), valIdx = file.split(valSplit);
    const mc = modelConfigFor(cfg, file);
    const spec = inputSpecOf(cfg);
    const layout = layoutByName(file.meta.layout);
    if (cfg.f16 && !rt.gpu.f16) {
      throw new Error(`--f16: the adapter ${rt.gpu.description.name} has no shader-f16 feature`);
    }
    rt.computeDtype = cfg.f16 ? "f16" : "f32";
    const model = buildModel(rt, mc, cfg.seed);
    const opt = new Optimizer(rt, model.namedParams(), {
      kind: cfg.optimizer,
      weightDecay: cfg.weightDecay,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      momentum: cfg.momentum,
      nesterov: cfg.nesterov,
      clipNorm: cfg.clipNorm,
    });
    const micro = cfg.batchSize / cfg.accumulate;
    if (!Number.isInteger(micro)) {
      throw new Error(
        `--accumulate: ${cfg.accumulate} does not divide --batch-size ${cfg.batchSize}`,
      );
    }
    const mode = {
      train: true,
      clips: 1,
      flipTest: false,
      flipProb: cfg.flip,
      augment: { rotation: cfg.rotation, noise: cfg.noise, shift: cfg.shift },
    };
    const loader = new BatchLoader(file, trainIdx, spec, mode, {
      batchSize: micro,
      shuffle: true,
      seed: cfg.seed,
      window: 8,
      prefetch: 2,
      dropLast: true,
    });
    const stepsPerEpoch = Math.floor(loader.batchesPerEpoch / cfg.accumulate);
    if (stepsPerEpoch === 0) {
      throw new Error(
        `--batch-size ${cfg.batchSize} exceeds the ${trainIdx.length} training samples`,
      );
    }
    const schedule: Schedule = {
      kind: cfg.schedule,
      lr: cfg.lr,
      warmupSteps: Math.round(cfg.warmupEpochs * stepsPerEpoch),
      totalSteps: cfg.epochs * stepsPerEpoch,
      milestones: cfg.milestones,
      gamma: cfg.gamma,
      minRatio: 0,
    };
    const metricsPath = join(out, "metrics.jsonl");
    let startEpoch = 0, skipBatches = 0, best = { epoch: -1, acc: -1 };
    let carry = { loss: 0, correct: 0, seen: 0 };
    if (resume) {
      const meta = await loadCheckpoint(rt, join(out, "last.safetensors"), model, opt);
      const pos = JSON.parse(meta.position ?? "{}");
      startEpoch = pos.epoch ?? 0;
      skipBatches = pos.batch ?? 0;
      best = pos.best ?? best;
      carry = pos.carry ?? carry;
      log(`resuming ${out} at epoch ${startEpoch + 1}, batch ${skipBatches}`);
    } else {
      await Deno.writeTextFile(
        join(out, "config.json"),
        JSON.stringify({ ...cfg, data: dataPath, modelConfig: mc }, null, 2),
      );
      await Deno.writeTextFile(metricsPath, "");
    }
    log(
      `${cfg.model}: ${
        parameterCount(mc).toLocaleString("en")
      } parameters, ${trainIdx.length} train / ${valIdx.length} val samples, ${stepsPerEpoch} steps per epoch, on ${rt.gpu.description.name}`,
    );

    const renderer = rendererFor(rt, spec, layout);
    const seed = rt.tensor([0], [1], "i32", { persistent: true, name: "dropoutSeed" });
    for (const m of [model]) (m as { ctx: { seed: typeof seed | null } }).ctx.seed = seed;
    const lossSum = rt.persistent([1], "f32", "lossSum"),
      correctSum = rt.persistent([1], "f32", "correctSum");
    const meta = (epoch: number, batch: number, carryNow: typeof carry) => ({
      preset: cfg.model,
      config: JSON.stringify(mc),
      // The input pipeline too, so that a checkpoint alone evaluates like its run folder.
      input: JSON.stringify(inputSpecOf(cfg)),
      position: JSON.stringify({ epoch, batch, best, carry: carryNow }),
    });
    const stepInputs = new Map<number, { labels: Tensor; kp: Tensor | null }>();
    const steps = new StepGraphs(rt);
    const t0 = performance.now();
    let interrupted = false, seenTotal = 0;
    const epochs: EpochMetrics[] = [];
    model.train(true);
    for (let epoch = startEpoch; epoch < cfg.epochs && !interrupted; epoch++) {
      const te = performance.now();
      rt.write(lossSum, [carry.loss]);
      rt.write(correctSum, [carry.correct]);
      let seen = carry.seen, batch = 0, lr = 0;
      carry = { loss: 0, correct: 0, seen: 0 };
      for await (const hb of loader.epoch(epoch)) {
        if (batch < skipBatches) {
          batch++;
          continue;
        }
        const step = epoch * stepsPerEpoch + Math.floor(batch / cfg.accumulate);
        if (batch % cfg.accumulate === 0) {
          lr = learningRate(schedule, step);
          opt.beginStep(lr);
        }
        // Per-step inputs go into fixed tensors first; then the step itself (forward,
        // backward, update) is a replay of the graph captured at its first occurrence.
        rt.write(seed, [(cfg.seed * 1000003 + epoch * 100003 + batch) | 0]);
        const fixed = stepInputs.get(hb.samples) ?? stepInputs.set(hb.samples, {
          labels: rt.persistent([hb.samples], "i32", "labels"),
          kp: renderer ? null : rt.persistent(
            [hb.samples, spec.persons, spec.clipLen, layout.joints.length, 3],
            "f32",
            "keypoints",
          ),
        }).get(hb.samples)!;
        rt.write(fixed.labels, hb.labels);
        const shape = [hb.samples, spec.persons, spec.clipLen, layout.joints.length] as const;
        const input = renderer ? renderer.render(hb.xy!, hb.score!, shape) : fixed.kp!;
        if (!renderer) rt.write(input, hb.kp!);
        const update = (batch + 1) % cfg.accumulate === 0;
        const body = () => {
          rt.tidy(() => {
            const logits = ops.cast(model.forward(input), "f32");
            const loss = ops.crossEntropy(logits, fixed.labels, cfg.labelSmoothing);
            backward(
              cfg.accumulate > 1 ? ops.scale(loss, 1 / cfg.accumulate) : loss,
              opt.lossSeed(),
            );
            map(rt, [loss], "yo + v0 * " + hb.samples.toFixed(1), { out: lossSum });
            accumulateCorrect(rt, logits, fixed.labels, correctSum);
          });
          if (update) opt.step();
        };
        steps.run(`${hb.samples}:${update}`, input, body);
        rt.flush();
        seen += hb.samples;
        seenTotal += hb.samples;
        batch++;
        hooks.progress?.(
          epoch,
          batch,
          loader.batchesPerEpoch,
          seenTotal / ((performance.now() - t0) / 1000),
        );
        if (
          hooks.shouldStop?.() && batch % cfg.accumulate === 0 &&
          batch < stepsPerEpoch * cfg.accumulate
        ) {
          const [l, c] = [await rt.item(lossSum), await rt.item(correctSum)];
          await saveCheckpoint(
            rt,
            join(out, "last.safetensors"),
            model,
            opt,
            meta(epoch, batch, { loss: l, correct: c, seen }),
          );
          log(
            `interrupted: saved ${join(out, "last.safetensors")} at epoch ${
              epoch + 1
            }, batch ${batch}; continue with --resume ${out}`,
          );
          interrupted = true;
          break;
        }
      }
      skipBatches = 0;
      if (interrupted) break;
      if (batch % cfg.accumulate !== 0) opt.zeroGrad(); // a trailing partial accumulation
      // One host sync per epoch: loss, accuracy and the optimiser's scale state.
      const [ls, cs, gs] = await rt.readMany([lossSum, correctSum, opt.gradScale]);
      const trainLoss = ls[0] / seen, trainAcc = cs[0] / seen;
      if (!Number.isFinite(trainLoss)) {
        throw new TrainingStopped(
          `the training loss became ${trainLoss} in epoch ${
            epoch + 1
          }; stopped. The last good checkpoint is ${
            join(out, "last.safetensors")
          } (lower --lr or set --clip-norm)`,
        );
      }
      const validate = (epoch + 1) % cfg.evalEvery === 0 || epoch + 1 === cfg.epochs;
      const val = validate ? await evaluate(rt, model, file, valIdx, spec, TEST_MODE, micro) : null;
      const secs = (performance.now() - te) / 1000;
      const m: EpochMetrics = {
        epoch: epoch + 1,
        trainLoss,
        trainAccuracy: trainAcc,
        valAccuracy: val?.top1 ?? NaN,
        lr,
        samplesPerSec: seen / secs,
        seconds: secs,
        skippedSteps: gs[5],
        lossScale: gs[3],
      };
      epochs.push(m);
      await appendLine(metricsPath, m);
      if (val && val.top1 > best.acc) {
        best = { epoch: epoch + 1, acc: val.top1 };
        await saveCheckpoint(
          rt,
          join(out, "best.safetensors"),
          model,
          undefined,
          meta(epoch + 1, 0, carry),
        );
      }
      await saveCheckpoint(
        rt,
        join(out, "last.safetensors"),
        model,
        opt,
        meta(epoch + 1, 0, { loss: 0, correct: 0, seen: 0 }),
      );
      log(
        `epoch ${epoch + 1}/${cfg.epochs}: loss ${trainLoss.toFixed(3)}, train ${
          (trainAcc * 100).toFixed(1)
        }%, val ${val ? `${(val.top1 * 100).toFixed(1)}%` : "-"}, lr ${lr.toExponential(2)}, ${
          m.samplesPerSec.toFixed(0)
        } samples/s`,
      );
    }
    renderer?.dispose();
    steps.dispose();
    for (const f of stepInputs.values()) [f.labels, f.kp].forEach((t) => t && rt.dispose(t));
    // Final evaluation of the best checkpoint with the configured test-time views.
    if (!interrupted && best.epoch > 0) {
      await loadCheckpoint(rt, join(out, "best.safetensors"), model);
    }
    const finalMode = { ...TEST_MODE, clips: cfg.testClips, flipTest: cfg.flipTest };
    // No more rows per pass than a training micro-batch, whose buffers are known to fit: 32
    // samples x 10 clips x 2 flips once needed a 160 MiB buffer, above lavapipe's 128 MiB.
    const final = await evaluate(
      rt,
      model,
      file,
      valIdx,
      spec,
      finalMode,
      samplesPerPass(micro, finalMode),
    );
    const seconds = (performance.now() - t0) / 1000;
    const summary: TrainSummary = {
      run: out,
      model: cfg.model,
      parameters: parameterCount(mc),
      epochs: epochs.length,
      bestEpoch: best.epoch,
      bestValAccuracy: best.acc,
      final: { ...final, clips: cfg.testClips, flip: cfg.flipTest },
      samplesPerSec: seenTotal / seconds,
      seconds,
      interrupted,
    };
    await Deno.writeTextFile(join(out, "summary.json"), JSON.stringify(summary, null, 2));
    return summary;
  } finally {
    await file.close();
  }
}
