// `heatformer bench train`: training-step time (forward, backward, optimiser) and samples/s
// for the reference step of ../shared/spec/performance.md (2-layer encoder, batch 8,
// sequence 64, width 128, 4 heads, MLP 512, Adam) and for each family's CPU-sized preset.
import { tuneRecorded } from "../runtime/autotune.ts";
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import { Block } from "../layers/basic.ts";
import { Rng } from "../layers/init.ts";
import { Module } from "../layers/module.ts";
import type { ModelConfig } from "../models/config.ts";
import { buildModel, flopsPerSample, presetByName } from "../models/presets.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { DEFAULT_OPTIMIZER, Optimizer } from "../training/optimizer.ts";
import { type PeerTime, runPeer } from "./peer.ts";
import { medianMs } from "./timing.ts";

export interface StepResult {
  name: string;
  batch: number;
  /** Pipelined: steps back to back, one sync (a training loop), each step a replay of the
   * captured step graph (what `heatformer train` runs). */
  msPerStep: number;
  /** The same, with every step recorded afresh (autograd and all). */
  eagerMsPerStep: number;
  /** Each step waited for (includes a ~12 ms host sync on llvmpipe). */
  syncedMsPerStep: number;
  samplesPerSec: number;
  dispatchesPerStep: number;
  submitsPerStep: number;
  /** Presets: forward + backward FLOPs per second (3x the forward count of `heatformer models`). */
  gflops?: number;
}

interface StepTimes {
  ms: number;
  eagerMs: number;
  syncedMs: number;
  dispatches: number;
  submits: number;
}

/**
 * Step time three ways: pipelined (`steps` steps back to back, one host sync at the end,
 * divided: what a training loop sees), as replays of the captured step and eagerly, rounds of
 * the two interleaved so that drift on the shared host hits both alike; and synced (median of
 * replayed steps each waited for, ~12 ms of host sync included).
 */
async function timeSteps(
  rt: Runtime,
  /** Writes the step's per-step inputs (learning rate). */
  begin: () => void,
  /** Records forward, backward and the optimiser update. */
  body: () => void,
  steps = 7,
  rounds = 3,
): Promise<StepTimes> {
  // a step queues its kernel shapes: measure them before capturing the timed graph
  await tuneRecorded(rt, () => (begin(), body()));
  const { graph } = rt.capture(body);
  rt.flush();
  const replayed = () => {
    begin();
    rt.replay(graph);
    rt.flush();
  };
  const eager = () => {
    begin();
    body();
    rt.flush();
  };
  for (let i = 0; i < 2; i++) {
    replayed();
    eager();
  }
  await rt.sync();
  const round = async (step: () => void) => {
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step();
    await rt.sync();
    return (performance.now() - t0) / steps;
  };
  const s0 = { ...rt.stats };
  const times = { replayed: [] as number[], eager: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    times.replayed.push(await round(replayed));
    times.eager.push(await round(eager));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
  const counts = {
    dispatches: (rt.stats.dispatches - s0.dispatches) / (2 * rounds * steps),
    submits: (rt.stats.submits - s0.submits) / (2 * rounds * steps),
  };
  const syncedMs = await medianMs(async () => {
    replayed();
    await rt.sync();
  }, { warmup: 0 });
  graph.dispose();
  return { ms: median(times.replayed), eagerMs: median(times.eager), syncedMs, ...counts };
}

class ReferenceEncoder extends Module {
  readonly blocks: Block[];
  constructor(rt: Runtime) {
    super(rt);
    const rng = new Rng(1), ctx = { seed: null, sites: 0 };
    this.blocks = [0, 1].map((i) =>
      this.child(`${i}`, new Block(rt, 128, 4, rng.fork(i), ctx, { mlpRatio: 4 }))
    );
  }
  forward(x: Tensor): Tensor {
    for (const b of this.blocks) x = b.forward(x);
    return x;
  }
}

export interface KernelTime {
  kernel: string;
  /** Summed over the step's dispatches of this kernel. */
  ms: number;
  count: number;
  /** Workgroups per dispatch (of the last one recorded). */
  workgroups: number;
}

export interface PeerStep {
  name: string;
  msPerStep: number;
  /** peer time / heatformer time for the reference step. */
  ratio: number;
}

export async function benchTrain(
  rt: Runtime,
  o: {
    log?: (l: string) => void;
    peers?: boolean;
    f16?: boolean;
    profile?: boolean;
    presets?: boolean;
    /** Presets to time (default: each family's CPU-sized one). */
    models?: string[];
    /** Samples per preset step (default 16). */
    batch?: number;
  } = {},
): Promise<{ results: StepResult[]; peers: PeerStep[]; profile?: KernelTime[] }> {
  const log = o.log ?? (() => {});
  if (o.f16 && !rt.gpu.f16) throw new Error("--f16: the adapter has no shader-f16 feature");
  rt.computeDtype = o.f16 ? "f16" : "f32";
  const tag = o.f16 ? " f16" : "";
  const results: StepResult[] = [];
  let profile: KernelTime[] | undefined;
  const report = (name: string, batch: number, t: StepTimes, flops?: number) => {
    const r: StepResult = {
      name,
      batch,
      msPerStep: t.ms,
      eagerMsPerStep: t.eagerMs,
      syncedMsPerStep: t.syncedMs,
      samplesPerSec: (batch * 1000) / t.ms,
      dispatchesPerStep: t.dispatches,
      submitsPerStep: t.submits,
      ...(flops ? { gflops: (flops * batch) / (t.ms * 1e6) } : {}),
    };
    results.push(r);
    log(
      `${name.padEnd(28)} ${t.ms.toFixed(1).padStart(7)} ms/step (eager ${t.eagerMs.toFixed(1)}, ${
        t.syncedMs.toFixed(1)
      } with a sync)  ${r.samplesPerSec.toFixed(0).padStart(5)} samples/s  ${
        t.dispatches.toFixed(0)
      } dispatches, ${t.submits.toFixed(0)} submit(s)${
        r.gflops ? `  ${r.gflops.toFixed(0)} GFLOP/s` : ""
      }`,
    );
  };
  // The reference step (loss: cross-entropy over the 64 x 8 tokens, 128 classes).
  {
    const model = new ReferenceEncoder(rt);
    const opt = new Optimizer(rt, model.namedParams(), { ...DEFAULT_OPTIMIZER, weightDecay: 0 });
    const x = rt.tensor(
      Float32Array.from({ length: 8 * 64 * 128 }, (_, i) => Math.sin(i)),
      [8, 64, 128],
      "f32",
      { persistent: true },
    );
    const y = rt.tensor(Array.from({ length: 8 * 64 }, (_, i) => i % 128), [8 * 64], "i32", {
      persistent: true,
    });
    const begin = () => opt.beginStep(1e-3);
    const body = () => {
      rt.tidy(() =>
        backward(ops.crossEntropy(model.forward(x).view([8 * 64, 128]), y), opt.lossSeed())
      );
      opt.step();
    };
    const t = await timeSteps(rt, begin, body);
    report(`reference (2x128, B8, L64)${tag}`, 8, t);
    if (o.profile) {
      // Where the reference step's time goes: each dispatch replayed alone.
      rt.profiling(true);
      begin();
      body();
      profile = [...(await rt.replayProfile(10))]
        .map(([kernel, v]) => ({ kernel, ms: v.ms, count: v.count, workgroups: v.workgroups }))
        .sort((a, b) => b.ms - a.ms);
      const total = profile.reduce((a, k) => a + k.ms, 0);
      log(`profile of one reference step (kernels replayed alone; sum ${total.toFixed(1)} ms):`);
      for (const k of profile) {
        log(
          `  ${k.ms.toFixed(2).padStart(7)} ms ${String(k.count).padStart(4)}x ${
            String(k.workgroups).padStart(6)
          } wg  ${k.kernel}`,
        );
      }
    }
  }
  // Each family's CPU-sized preset on its own input shape.
  const presets = o.models ??
    ["vanilla-tiny", "vivit-m1-tiny", "vivit-m2-tiny", "motionbert-tiny"];
  for (const name of o.presets === false ? [] : presets) {
    const c: ModelConfig = { ...presetByName(name).config, classes: 16 };
    const model = buildModel(rt, c, 1);
    const opt = new Optimizer(rt, model.namedParams(), DEFAULT_OPTIMIZER);
    const B = o.batch ?? 16, i = c.input;
    const shape = [B, i.channels, i.frames, i.size, i.size];
    const x = rt.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, k) => (k % 97) / 97),
      shape,
      "f32",
      { persistent: true },
    );
    const y = rt.tensor(Array.from({ length: B }, (_, k) => k % 16), [B], "i32", {
      persistent: true,
    });
    const t = await timeSteps(rt, () => opt.beginStep(1e-3), () => {
      rt.tidy(() => backward(ops.crossEntropy(model.forward(x), y), opt.lossSeed()));
      opt.step();
    });
    report(
      `${name} (B${B}, ${i.channels}x${i.frames}x${i.size}x${i.size})${tag}`,
      B,
      t,
      3 * flopsPerSample(c),
    );
  }
  const peers: PeerStep[] = [];
  // The same reference step in the TypeScript peers, timed in this run (each in its own
  // process, bench/peer.ts): TensorFlow.js on WebGPU (the same adapter) and jax-js on
  // WebAssembly (the fastest peer on a CPU).
  const runners: [string, () => Promise<PeerTime>][] = [
    ["tfjs-webgpu", () => runPeer({ peer: "tfjs-train" })],
    ["jax-js-wasm", () => runPeer({ peer: "jaxjs-train", device: "wasm", jit: true })],
    ["jax-js-wasm-eager", () => runPeer({ peer: "jaxjs-train", device: "wasm", jit: false })],
  ];
  for (const [name, run] of o.peers === false ? [] : runners) {
    try {
      const p = await run();
      const ours = results[0].msPerStep;
      peers.push({ ...p, ratio: p.msPerStep / ours });
      log(
        `peer ${p.name} reference step: ${p.msPerStep.toFixed(1)} ms/step (heatformer ${
          (p.msPerStep / ours).toFixed(2)
        }x faster)`,
      );
    } catch (e) {
      log(`peer ${name} unavailable: ${(e as Error).message}`);
    }
  }
  rt.computeDtype = "f32";
  return { results, peers, profile };
}
