// `heatformer bench kernels`: the adapter's FMA peak, matmul, attention and the tubelet
// embedding at the study's shapes, and the same matmuls in TensorFlow.js WebGPU, one run.
import { tuneRecorded } from "../runtime/autotune.ts";
import {
  ATTENTION_VARIANTS,
  attentionForward,
  type AttentionVariant,
  denseAttentionForward,
  variantServes,
} from "../kernels/attention/mod.ts";
import { attentionCase, checkAttention, disposeCase } from "./attention_check.ts";
import { matmul } from "../kernels/matmul.ts";
import { PEAK_WG, peakFlops, peakKernel } from "../kernels/peak.ts";
import { patchify } from "../kernels/tubelet.ts";
import type { AdapterDescription } from "../runtime/device.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { type PeerResult, runPeer } from "./peer.ts";
import { timeGpu } from "./timing.ts";

export interface KernelResult {
  kernel: string;
  shape: number[];
  gflops: number;
  ms: number;
  /** Percent of the measured FMA peak. */
  peakPct: number;
  note?: string;
}

export interface KernelBenchReport {
  adapter: AdapterDescription;
  peakGflops: number;
  results: KernelResult[];
  peers: PeerResult[];
  /** ours / peer GFLOP/s per matmul size. */
  ratios: { shape: number[]; ratio: number }[];
}

export interface KernelBenchOptions {
  /** f16 storage (f32 accumulation) for matmul and attention; needs shader-f16. */
  f16?: boolean;
  matmulSizes?: number[];
  attentionLengths?: number[];
  peers?: boolean;
  minMs?: number;
  log?: (line: string) => void;
}

function randomTensor(rt: Runtime, shape: number[], dtype: "f32" | "f16" = "f32") {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 0.5;
  return rt.tensor(data, shape, dtype, { persistent: true });
}

/** Times `record` once the autotuner, where it runs, has measured the kernels it records. */
async function timeTuned(
  rt: Runtime,
  record: () => void,
  minMs: number,
): Promise<{ ms: number; reps: number }> {
  await tuneRecorded(rt, record);
  return timeGpu(rt, record, { minMs });
}
export async function benchKernels(
  rt: Runtime,
  o: KernelBenchOptions = {},
): Promise<KernelBenchReport> {
  const log = o.log ?? (() => {});
  const minMs = o.minMs ?? 300;
  const dt = o.f16 ? "f16" : "f32";
  if (o.f16 && !rt.gpu.f16) throw new Error("--f16: this adapter has no shader-f16");
  const results: KernelResult[] = [];

  // Peak: enough workgroups to fill every core, enough iterations to dwarf launch cost.
  const sink = rt.persistent([4], "f32", "peak.sink");
  const groups = 256, iters = 1024;
  const peakSpec = peakKernel(sink, groups, iters);
  const peak = await timeGpu(rt, () => rt.run(peakSpec), { minMs });
  const peakGflops = peakFlops(groups, iters) / peak.ms / 1e6;
  log(`peak FMA: ${peakGflops.toFixed(1)} GFLOP/s (${groups}x${PEAK_WG} invocations)`);
  const pct = (g: number) => (100 * g) / peakGflops;

  for (const n of o.matmulSizes ?? [256, 512, 1024, 2048]) {
    const a = randomTensor(rt, [n, n], dt), b = randomTensor(rt, [n, n], dt);
    const c = rt.persistent([n, n], dt, "bench.c");
    const t = await timeTuned(rt, () => matmul(rt, a, b, { out: c }), minMs);
    const gflops = (2 * n ** 3) / t.ms / 1e6;
    results.push({
      kernel: "matmul",
      shape: [n, n, n],
      gflops,
      ms: t.ms,
      peakPct: pct(gflops),
      note: dt,
    });
    log(
      `matmul ${n}^3: ${t.ms.toFixed(2)} ms, ${gflops.toFixed(1)} GFLOP/s (${
        pct(gflops).toFixed(0)
      }% of peak)`,
    );
    for (const x of [a, b, c]) rt.dispose(x);
  }

  for (const l of o.attentionLengths ?? [64, 256, 1024]) {
    results.push(...await benchAttention(rt, l, dt, minMs, pct, log));
  }

  // Tubelet embedding at the study's ViViT shape: 17 x 56^3 volume, tubelet 8x8x8 and
  // 4x8x8, width 256, batch 2.
  for (const tube of [[8, 8, 8], [4, 8, 8]] as const) {
    const [n, c, s, width] = [2, 17, 56, 256];
    const x = randomTensor(rt, [n, c, s, s, s]);
    const p = c * tube[0] * tube[1] * tube[2];
    const w = randomTensor(rt, [width, p]);
    const t = await timeGpu(rt, () =>
      rt.tidy(() => {
        const patches = patchify(rt, x, tube);
        matmul(rt, patches.view([-1, p]), w, { transB: true });
      }), { minMs });
    const tokens = (s / tube[0]) * (s / tube[1]) * (s / tube[2]);
    const gflops = (2 * n * tokens * p * width) / t.ms / 1e6;
    results.push({
      kernel: "tubelet",
      shape: [n, c, s, s, s, ...tube, width],
      gflops,
      ms: t.ms,
      peakPct: pct(gflops),
      note: "patchify + matmul",
    });
    log(
      `tubelet ${tube.join("x")} (2x17x56^3 -> ${tokens} tokens x ${width}): ${
        t.ms.toFixed(2)
      } ms, ${gflops.toFixed(1)} GFLOP/s`,
    );
    for (const y of [x, w]) rt.dispose(y);
  }

  let peers: PeerResult[] = [];
  if (o.peers !== false) {
    try {
      peers = await runPeer({
        peer: "tfjs-matmul",
        sizes: o.matmulSizes ?? [256, 512, 1024, 2048],
        minMs,
      });
      for (const r of peers) {
        log(`peer ${r.name} matmul ${r.shape[0]}^3: ${r.gflops.toFixed(1)} GFLOP/s`);
      }
    } catch (e) {
      log(`peer tfjs-webgpu unavailable: ${(e as Error).message}`);
    }
  }
  const ratios = peers.map((p) => {
    const ours = results.find((r) => r.kernel === "matmul" && r.shape[0] === p.shape[0]);
    return { shape: p.shape, ratio: ours ? ours.gflops / p.gflops : NaN };
  });
  for (const r of ratios) {
    log(`matmul ${r.shape[0]}^3: heatformer / tfjs-webgpu = ${r.ratio.toFixed(1)}x`);
  }
  rt.dispose(sink);
  return { adapter: rt.gpu.description, peakGflops, results, peers, ratios };
}

/**
 * Attention at length l (B8 H8 D64): each variant that runs here is first checked against the
 * reference, forward and backward (on B2 H2, a mask; a mismatch throws), then its forward is
 * timed.
 */
async function benchAttention(
  rt: Runtime,
  l: number,
  dt: "f32" | "f16",
  minMs: number,
  pct: (gflops: number) => number,
  log: (line: string) => void,
): Promise<KernelResult[]> {
  const [bsz, h, d] = [8, 8, 64];
  const q = randomTensor(rt, [bsz, l, h, d], dt), k = randomTensor(rt, [bsz, l, h, d], dt);
  const v = randomTensor(rt, [bsz, l, h, d], dt);
  const check = await attentionCase(rt, { b: 2, h: 2, lq: l, lk: l, d }, dt);
  const results: KernelResult[] = [];
  for (const variant of ATTENTION_VARIANTS) {
    const what = `attention ${variant} B${bsz} H${h} L${l} D${d}`;
    if (!variantServes(variant, q, k, v) || !variantServes(variant, check.q, check.k, check.v)) {
      log(`${what}: does not run here, skipped`);
      continue;
    }
    const diff = await checkAttention(rt, variant, check);
    const forward = (x: AttentionVariant) =>
      x === "dense" ? denseAttentionForward(rt, q, k, v) : attentionForward(rt, q, k, v, {
        variant: x,
      });
    const t = await timeTuned(rt, () => rt.tidy(() => void forward(variant)), minMs);
    const gflops = (4 * bsz * h * l * l * d) / t.ms / 1e6;
    results.push({
      kernel: "attention",
      shape: [bsz, h, l, d],
      gflops,
      ms: t.ms,
      peakPct: pct(gflops),
      note: `${variant}, ${dt}, max |diff| vs reference ${diff.toExponential(1)}`,
    });
    log(
      `${what}: matches the reference (max |diff| ${diff.toExponential(1)}); ` +
        `${t.ms.toFixed(2)} ms, ${gflops.toFixed(1)} GFLOP/s`,
    );
  }
  disposeCase(rt, check);
  for (const x of [q, k, v]) rt.dispose(x);
  return results;
}
