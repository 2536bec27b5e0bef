// A pool of GPU storage buffers by size class. Steps allocate the same sizes in the same
// order, so after the first step every allocation is a reuse (and bind groups stay cached).

export interface PooledBuffer {
  readonly id: number;
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  /** Captured graphs that use this buffer (runtime/graph.ts): while any does, a released
   * buffer is parked instead of being handed out again. */
  pins: number;
  parked: boolean;
}

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Rounds up to one of four classes per power of two: at most 25% waste. */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (b <= 256) return b;
  const p = 2 ** Math.floor(Math.log2(b));
  const quarter = p / 4;
  return Math.ceil(b / quarter) * quarter;
}

export class BufferPool {
  #free = new Map<number, PooledBuffer[]>();
  #nextId = 1;
  liveBytes = 0;
  pooledBytes = 0;
  /** The most device memory the pool has held at once (live + pooled), since the last reset. */
  peakBytes = 0;

  constructor(readonly device: GPUDevice, readonly maxBinding: number) {}

  acquire(bytes: number, what: string): PooledBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBinding) {
      throw new RangeError(
        `${what}: needs a buffer of ${fmtBytes(size)}, above the adapter's storage binding ` +
          `limit of ${fmtBytes(this.maxBinding)}; reduce the batch size or the input shape`,
      );
    }
    const list = this.#free.get(size);
    const reused = list?.pop();
    if (reused) {
      this.pooledBytes -= size;
      this.liveBytes += size;
      return reused;
    }
    const buffer = this.device.createBuffer({ size, usage: USAGE, label: what });
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes + this.pooledBytes);
    return { id: this.#nextId++, buffer, bytes: size, pins: 0, parked: false };
  }

  release(b: PooledBuffer): void {
    this.liveBytes -= b.bytes;
    if (b.pins > 0) {
      b.parked = true;
      return;
    }
    this.#putFree(b);
  }

  /** Keeps b out of circulation until as many unpin() calls; takes it off the free list. */
  pin(b: PooledBuffer): void {
    b.pins++;
    const list = this.#free.get(b.bytes);
    const i = list?.indexOf(b) ?? -1;
    if (i >= 0) {
      list!.splice(i, 1);
      this.pooledBytes -= b.bytes;
      b.parked = true;
    }
  }

  unpin(b: PooledBuffer): void {
    if (b.pins <= 0) throw new Error(`unpin: buffer #${b.id} is not pinned`);
    if (--b.pins === 0 && b.parked) {
      b.parked = false;
      this.#putFree(b);
    }
  }

  #putFree(b: PooledBuffer): void {
    let list = this.#free.get(b.bytes);
    if (!list) this.#free.set(b.bytes, list = []);
    list.push(b);
    this.pooledBytes += b.bytes;
  }

  /** Destroys every pooled (free) buffer. */
  trim(): void {
    for (const list of this.#free.values()) for (const b of list) b.buffer.destroy();
    this.#free.clear();
    this.pooledBytes = 0;
  }
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
