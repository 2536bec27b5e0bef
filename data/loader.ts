// Streams host batches from an Arrow file for one split: shuffled by blocks (record batches
// in random order, samples shuffled within a window of them), so an epoch reads every
// record batch once and never loads the file whole; the next batches are prepared while
// the current one trains.
import { Rng } from "../layers/init.ts";
import { type BatchMode, type HostBatch, hostBatch, type InputSpec } from "./batches.ts";
import type { SkeletonFile, SkeletonRecord } from "./schema.ts";

export interface LoaderOptions {
  batchSize: number;
  shuffle: boolean;
  seed: number;
  /** Record batches mixed together when shuffling. */
  window: number;
  /** Batches prepared ahead. */
  prefetch: number;
  /** Keep a final partial batch. */
  dropLast: boolean;
}

export class BatchLoader {
  constructor(
    readonly file: SkeletonFile,
    readonly indices: number[],
    readonly spec: InputSpec,
    readonly mode: BatchMode,
    readonly o: LoaderOptions,
  ) {}

  get batchesPerEpoch(): number {
    return this.o.dropLast
      ? Math.floor(this.indices.length / this.o.batchSize)
      : Math.ceil(this.indices.length / this.o.batchSize);
  }

  /** The sample order of an epoch, grouped by record batch (deterministic per epoch). */
  order(epoch: number): number[] {
    const bs = this.file.meta.batchSize;
    const byBatch = new Map<number, number[]>();
    for (const i of this.indices) {
      const b = Math.floor(i / bs);
      let l = byBatch.get(b);
      if (!l) byBatch.set(b, l = []);
      l.push(i);
    }
    const blocks = [...byBatch.keys()];
    if (!this.o.shuffle) return blocks.flatMap((b) => byBatch.get(b)!);
    const rng = new Rng(this.o.seed * 1000003 + epoch);
    shuffle(blocks, rng);
    const out: number[] = [];
    for (let w = 0; w < blocks.length; w += this.o.window) {
      const group = blocks.slice(w, w + this.o.window).flatMap((b) => byBatch.get(b)!);
      shuffle(group, rng);
      out.push(...group);
    }
    return out;
  }

  /** Host batches of one epoch, `prefetch` ahead. */
  async *epoch(epoch: number): AsyncGenerator<HostBatch> {
    const order = this.order(epoch);
    const n = this.batchesPerEpoch;
    const cache = new Map<number, Promise<SkeletonRecord[]>>();
    const bs = this.file.meta.batchSize;
    const read = (i: number) => {
      const b = Math.floor(i / bs);
      let p = cache.get(b);
      if (!p) {
        p = this.file.readBatch(b);
        cache.set(b, p);
        // keep the window's record batches decoded, forget older ones
        if (cache.size > this.o.window * 2) cache.delete(cache.keys().next().value!);
      }
      return p.then((rows) => rows[i % bs]);
    };
    const make = async (k: number) => {
      const ids = order.slice(k * this.o.batchSize, (k + 1) * this.o.batchSize);
      const recs = await Promise.all(ids.map(read));
      // Each batch has its own stream: the same batches whatever the prefetch timing, and
      // a resumed run reproduces them.
      const rng = new Rng((this.o.seed * 7919 + epoch) * 100003 + k);
      return hostBatch(recs, this.file.meta, this.spec, this.mode, rng);
    };
    // A batch prepared ahead may fail (a damaged record batch) before it is awaited: mark its
    // rejection handled here, and let it surface where it is awaited, in order.
    const ahead = (k: number) => {
      const p = make(k);
      p.catch(() => {});
      return p;
    };
    const queue: Promise<HostBatch>[] = [];
    for (let k = 0; k < Math.min(n, this.o.prefetch + 1); k++) queue.push(ahead(k));
    for (let k = 0; k < n; k++) {
      const next = k + queue.length;
      const hb = await queue.shift()!;
      if (next < n) queue.push(ahead(next));
      yield hb;
    }
  }
}

function shuffle<T>(a: T[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
}
