// Kernel choices measured on the adapter at first use, cached per adapter and shape.
//
// A kernel with several good variants (matmul tiles and split-K factors, attention rows per
// workgroup) asks `choose` for a key naming its shape. A cached answer is used at once; an
// unknown key is queued and the caller takes its heuristic meanwhile: recording is synchronous
// and measuring needs the GPU to finish. Between steps (never while a step graph is captured)
// `tune` times every candidate of each queued key on scratch operands of the same shapes,
// keeps the fastest, and saves the cache; the caller then records its step again. The cache
// is one JSON file shared by every run on the machine, merged on save (runs in a shell loop
// may tune at once), keyed by the adapter so that two GPUs never share answers.
import { timeGpu } from "./timing.ts";
import type { Gpu } from "./device.ts";
import type { Runtime } from "./runtime.ts";
import { BYTES_PER_ELEMENT } from "./dtype.ts";
import { Tensor } from "./tensor.ts";

/** One kernel's shape, its candidate choices and how to time them. */
export interface TuneRequest {
  /** Kernel family and shape, e.g. `matmul 1x768x156x53312 tB`: the cache key. */
  key: string;
  /** The choices, serialised; the first is the caller's heuristic. */
  candidates: string[];
  /** Allocates scratch operands and returns a recorder of one run of a choice on them. */
  prepare(rt: Runtime): { record(choice: string): void; dispose(): void };
}

export interface TuneResult {
  key: string;
  choice: string;
  /** Milliseconds per run of each candidate. */
  ms: Record<string, number>;
}

interface CacheFile {
  version: 1;
  adapters: Record<string, Record<string, TuneResult>>;
}

/** What identifies an adapter's answers: vendor, architecture, name and backend. */
export function adapterKey(gpu: Gpu): string {
  const d = gpu.description;
  return [d.vendor, d.architecture, d.name, d.backend].join(" | ");
}

/**
 * Where the cache lives: $HEATFORMER_CACHE, else $XDG_CACHE_HOME/heatformer, else
 * ~/.cache/heatformer; null when none can be named (then answers last one process).
 */
export function defaultCacheFile(): string | null {
  const env = (k: string) => Deno.env.get(k) || undefined;
  const dir = env("HEATFORMER_CACHE") ??
    (env("XDG_CACHE_HOME") ? `${env("XDG_CACHE_HOME")}/heatformer` : undefined) ??
    (env("HOME") ? `${env("HOME")}/.cache/heatformer` : undefined);
  return dir ? `${dir}/autotune.json` : null;
}

async function readCache(file: string): Promise<CacheFile> {
  try {
    const j = JSON.parse(await Deno.readTextFile(file)) as CacheFile;
    if (j?.version === 1 && typeof j.adapters === "object") return j;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      console.error(`autotune: ignoring unreadable cache ${file}: ${(e as Error).message}`);
    }
  }
  return { version: 1, adapters: {} };
}

export class Autotuner {
  readonly #answers = new Map<string, TuneResult>();
  readonly #pending = new Map<string, TuneRequest>();

  private constructor(readonly adapter: string, readonly file: string | null) {}

  /** A tuner holding the cached answers for this adapter. */
  static async open(gpu: Gpu, file: string | null = defaultCacheFile()): Promise<Autotuner> {
    const t = new Autotuner(adapterKey(gpu), file);
    if (file) {
      const cached = (await readCache(file)).adapters[t.adapter] ?? {};
      for (const r of Object.values(cached)) t.#answers.set(r.key, r);
    }
    return t;
  }

  /** The measured choice for the request's key, or undefined (and the key is queued). */
  choose(req: TuneRequest): string | undefined {
    const a = this.#answers.get(req.key);
    if (a && req.candidates.includes(a.choice)) return a.choice;
    if (req.candidates.length > 1 && !this.#pending.has(req.key)) this.#pending.set(req.key, req);
    return undefined;
  }

  /** Keys waiting to be measured. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Measures every queued key (each candidate for at least `minMs`, after a warm-up run that
   * compiles it) and saves the answers. Call between steps, outside any capture.
   */
  async tune(rt: Runtime, o: { minMs?: number } = {}): Promise<TuneResult[]> {
    const results: TuneResult[] = [];
    await rt.sync();
    // Keys queued while timing (the products inside dense attention) wait for the next call.
    const queued = [...this.#pending.values()];
    for (const req of queued) {
      this.#pending.delete(req.key);
      const run = req.prepare(rt);
      const ms: Record<string, number> = {};
      try {
        for (const c of req.candidates) ms[c] = await timeCandidate(rt, () => run.record(c), o);
      } finally {
        run.dispose();
      }
      // the heuristic (first) stands unless another is faster; failed candidates never win
      const choice = req.candidates.reduce((a, b) => (ms[b] < ms[a] ? b : a));
      const r = { key: req.key, choice, ms };
      this.#answers.set(req.key, r);
      results.push(r);
    }
    if (results.length) await this.save();
    return results;
  }

  /** Merges this tuner's answers into the cache file (atomically: a temporary, renamed). */
  async save(): Promise<void> {
    if (!this.file) return;
    const dir = this.file.slice(0, this.file.lastIndexOf("/"));
    if (dir) await Deno.mkdir(dir, { recursive: true });
    const cache = await readCache(this.file);
    const mine = cache.adapters[this.adapter] ?? {};
    for (const r of this.#answers.values()) mine[r.key] = r;
    cache.adapters[this.adapter] = mine;
    const tmp = `${this.file}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(cache, null, 1) + "\n");
    await Deno.rename(tmp, this.file);
  }
}

/** Milliseconds per run of one candidate; Infinity when it cannot run here (a buffer past the
 * adapter's limits, a shader the driver rejects), so that it is never chosen. */
async function timeCandidate(
  rt: Runtime,
  record: () => void,
  o: { minMs?: number },
): Promise<number> {
  try {
    return (await timeGpu(rt, record, { minMs: o.minMs ?? 10 })).ms;
  } catch (e) {
    await rt.sync().catch(() => {}); // drop the failed work's errors with it
    console.error(`autotune: a candidate failed and is skipped: ${(e as Error).message}`);
    return Infinity;
  }
}

/**
 * Whether kernels are tuned: HEATFORMER_AUTOTUNE=on|off|auto (default auto: on for adapters
 * that are not software rasterisers; lavapipe keeps its measured defaults).
 */
export function autotuneWanted(gpu: Gpu): boolean {
  const v = (Deno.env.get("HEATFORMER_AUTOTUNE") ?? "auto").toLowerCase();
  if (v === "on" || v === "1") return true;
  if (v === "off" || v === "0") return false;
  return !gpu.software;
}

/** Tunes what the runtime's tuner has queued; true when anything was measured (the caller
 * then records its captured steps again, to use the answers). */
export async function tunePending(rt: Runtime, log?: (line: string) => void): Promise<boolean> {
  const tuner = rt.tuner;
  if (!tuner?.pending) return false;
  const t0 = performance.now();
  const results = await tuner.tune(rt);
  log?.(
    `autotune: ${results.length} kernel shapes measured in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s${tuner.file ? ` (cached in ${tuner.file})` : ""}`,
  );
  return results.length > 0;
}

/** A zeroed stand-in for `t` on a buffer of its own, with the same shape, strides, dtype and
 * offset within its binding, so that a kernel built for `t` runs on it unchanged. */
function scratchLike(rt: Runtime, t: Tensor): Tensor {
  const e = BYTES_PER_ELEMENT[t.dtype];
  const n = Math.ceil((t.storage.buf.bytes - t.bindByteOffset) / e / 2) * 2;
  const base = rt.empty([n], t.dtype, `scratch ${t.name}`);
  rt.clear(base);
  return new Tensor(rt, base.storage, t.shape, t.dtype, t.bindOffset, t.strides);
}

/**
 * A tuning run's operands: a zeroed stand-in (scratchLike) for each tensor of `x`, and how to
 * record one choice on them; the stand-ins are released with the recorder.
 */
export function onScratch<X extends Record<string, Tensor | undefined>>(
  rt: Runtime,
  x: X,
  record: (scratch: X, choice: string) => void,
): { record(choice: string): void; dispose(): void } {
  const scratch = Object.fromEntries(
    Object.entries(x).map(([name, t]) => [name, t && scratchLike(rt, t)]),
  ) as X;
  return {
    record: (choice) => record(scratch, choice),
    dispose: () => Object.values(scratch).forEach((t) => t && rt.dispose(t)),
  };
}

/**
 * Records `record` and tunes what it queued, again while tuning's own choices queue more (the
 * products inside dense attention), three rounds at most: what a benchmark does before it
 * times. Nothing where no tuner runs.
 */
export async function tuneRecorded(rt: Runtime, record: () => void): Promise<void> {
  for (let round = 0; rt.tuner && round < 3 && (round === 0 || rt.tuner.pending); round++) {
    record();
    await tunePending(rt);
  }
}
