// The runtime: allocation (pooled, scoped), recording dispatches into one command buffer,
// pipeline and bind-group caches, explicit asynchronous readback, error scopes that turn
// WebGPU validation errors into messages naming the kernel.
import { Autotuner, autotuneWanted } from "./autotune.ts";
import { BufferPool, type PooledBuffer } from "./buffer_pool.ts";
import { acquireGpu, type Gpu, type GpuOptions } from "./device.ts";
import { BYTES_PER_ELEMENT, type DType, f16BitsToF32, toF16Array } from "./dtype.ts";
import { Graph, type GraphCommand } from "./graph.ts";
import type { KernelSpec } from "./kernel.ts";
import { numel, type Shape, shapeStr, Storage, Tensor } from "./tensor.ts";

export class KernelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KernelError";
  }
}

export interface RuntimeStats {
  dispatches: number;
  submits: number;
  pipelines: number;
  bindGroups: number;
  readbacks: number;
}

export type HostArray = Float32Array | Int32Array;

export class Runtime {
  readonly device: GPUDevice;
  readonly pool: BufferPool;
  readonly stats: RuntimeStats = {
    dispatches: 0,
    submits: 0,
    pipelines: 0,
    bindGroups: 0,
    readbacks: 0,
  };
  /** Use subgroup kernels where the adapter has 8-lane subgroups (tests turn it off to
   * exercise the portable kernels). */
  useSubgroups = true;
  /** Storage dtype of activations in matmul-like ops (autograd/ops.ts autocast): "f16" for
   * mixed precision (f16 storage, f32 accumulation, f32 master weights) where the adapter
   * has shader-f16; "f32" everywhere else. */
  computeDtype: "f32" | "f16" = "f32";
  /** Attention kernels (autograd/ops.ts): "fused" online softmax, "dense" batched matmuls
   * around a stored softmax, or "auto" (dense for short f32 sequences on a software
   * adapter, where it measured faster; fused elsewhere). */
  attention: "auto" | "fused" | "dense" = "auto";
  /** Training steps are captured once and replayed (runtime/graph.ts StepGraphs); false
   * records every step afresh (for debugging, and the tests that compare the two). */
  replaySteps = true;
  /** Long reductions spread over many workgroups with interleaved (coalesced) reads: what a
   * GPU with many multiprocessors wants ("auto": on adapters that are not software ones). A
   * software adapter sums long contiguous runs per invocation instead (its caches like that). */
  spreadReductions: "auto" | boolean = "auto";
  /** Measures kernel variants at first use (runtime/autotune.ts); null: heuristics only. */
  tuner: Autotuner | null = null;
  get spread(): boolean {
    return this.spreadReductions === "auto" ? !this.gpu.software : this.spreadReductions;
  }
  #pipelines = new Map<string, GPUComputePipeline>();
  #pipelineIds = new Map<GPUComputePipeline, number>();
  #bindGroups = new Map<string, GPUBindGroup>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #errors: Promise<string | null>[] = [];
  #scopes: Storage[][] = [];
  #capture: {
    commands: GraphCommand[];
    buffers: Set<PooledBuffer>;
    staging: GPUBuffer[];
    allocated: Set<Storage>;
  } | null = null;
  #profile: {
    name: string;
    pipeline: GPUComputePipeline;
    bindGroup: GPUBindGroup;
    grid: [number, number, number];
  }[] | null = null;

  constructor(readonly gpu: Gpu) {
    this.device = gpu.device;
    this.pool = new BufferPool(gpu.device, gpu.description.limits.maxStorageBufferBindingSize);
  }

  /** A runtime on the best adapter; kernels are autotuned where `autotuneWanted` says. */
  static async create(options?: GpuOptions): Promise<Runtime> {
    const rt = new Runtime(await acquireGpu(options));
    if (autotuneWanted(rt.gpu)) rt.tuner = await Autotuner.open(rt.gpu);
    return rt;
  }

  // ---- allocation ----------------------------------------------------------------------

  /** An uninitialised tensor, released at the end of the enclosing tidy(). */
  empty(shape: Shape, dtype: DType = "f32", name = ""): Tensor {
    return this.#alloc(shape, dtype, name, false);
  }

  /** A tensor that outlives every tidy() (parameters, optimiser state). */
  persistent(shape: Shape, dtype: DType = "f32", name = ""): Tensor {
    return this.#alloc(shape, dtype, name, true);
  }

  #alloc(shape: Shape, dtype: DType, name: string, persistent: boolean): Tensor {
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new Error(`cannot allocate ${name || "tensor"} of shape ${shapeStr(shape)}`);
    }
    const bytes = Math.max(4, numel(shape) * BYTES_PER_ELEMENT[dtype]);
    const what = `${name || "tensor"} ${dtype}${shapeStr(shape)}`;
    const storage = new Storage(this.pool.acquire(bytes, what), persistent);
    if (!persistent) this.#scopes.at(-1)?.push(storage);
    this.#capture?.allocated.add(storage);
    const t = new Tensor(this, storage, shape, dtype);
    t.name = name;
    return t;
  }

  /** Uploads host data into a new tensor. */
  tensor(
    data: ArrayLike<number>,
    shape: Shape,
    dtype: DType = "f32",
    opts: { persistent?: boolean; name?: string } = {},
  ): Tensor {
    if (data.length !== numel(shape)) {
      throw new Error(
        `tensor ${opts.name ?? ""}: ${data.length} values do not fill shape ${shapeStr(shape)}`,
      );
    }
    const t = opts.persistent
      ? this.persistent(shape, dtype, opts.name)
      : this.empty(shape, dtype, opts.name);
    this.write(t, data);
    return t;
  }

  zeros(shape: Shape, dtype: DType = "f32", name = ""): Tensor {
    return this.tensor(new Float32Array(numel(shape)), shape, dtype, { name });
  }

  /** Writes host data into a contiguous tensor (queue-ordered: pending work is submitted first). */
  write(t: Tensor, data: ArrayLike<number>): void {
    if (!t.isContiguous) throw new Error(`write: ${t} is not contiguous`);
    if (data.length !== t.size) {
      throw new Error(`write: ${data.length} values for ${t} of ${t.size} elements`);
    }
    if (this.#capture) return this.#writeCaptured(t, data);
    // Recorded but unsubmitted commands may still read this (pooled) buffer: submit them so
    // the write lands after them in queue order.
    this.flush();
    const bytes = hostBytes(t, data);
    this.device.queue.writeBuffer(
      t.buffer,
      t.offset * BYTES_PER_ELEMENT[t.dtype],
      bytes.buffer as ArrayBuffer,
      bytes.byteOffset,
      bytes.byteLength,
    );
  }

  /** Inside capture(): the data becomes a constant of the graph, copied in command order. */
  #writeCaptured(t: Tensor, data: ArrayLike<number>): void {
    const cap = this.#capture!;
    if (!cap.allocated.has(t.storage)) {
      throw new Error(
        `write(${t}) inside capture(): a replay would write the same data again; write ` +
          `per-step inputs before replaying, into tensors made outside the captured function`,
      );
    }
    const bytes = hostBytes(t, data);
    const size = Math.ceil(bytes.byteLength / 4) * 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      label: `constant for ${t}`,
    });
    this.device.queue.writeBuffer(
      staging,
      0,
      bytes.buffer as ArrayBuffer,
      bytes.byteOffset,
      bytes.byteLength,
    );
    cap.staging.push(staging);
    this.#command({
      kind: "copy",
      src: staging,
      srcOffset: 0,
      dst: t.buffer,
      dstOffset: t.offset * BYTES_PER_ELEMENT[t.dtype],
      size,
    }, [t.storage.buf]);
  }

  /**
   * Runs fn, then releases every non-persistent tensor it allocated, except those in
   * `keep` and those returned (a Tensor or an array/object of Tensors).
   */
  tidy<T>(fn: () => T, keep: Tensor[] = []): T {
    this.#scopes.push([]);
    let result: T;
    try {
      result = fn();
    } finally {
      const scope = this.#scopes.pop()!;
      const kept = new Set<Storage>(keep.map((t) => t.storage));
      collectStorages(result!, kept);
      for (const s of scope) {
        if (kept.has(s)) this.#scopes.at(-1)?.push(s);
        else this.#release(s);
      }
    }
    return result;
  }

  /** Frees a tensor's storage now (it must not be used again). */
  dispose(t: Tensor): void {
    this.#release(t.storage);
  }

  #release(s: Storage): void {
    if (s.released) return;
    s.released = true;
    this.pool.release(s.buf);
  }

  // ---- recording -----------------------------------------------------------------------

  #pipeline(spec: KernelSpec): GPUComputePipeline {
    let p = this.#pipelines.get(spec.code);
    if (p) return p;
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ code: spec.code, label: spec.name });
    p = this.device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint: "main" },
      label: spec.name,
    });
    const code = spec.code;
    this.#errors.push(
      this.device.popErrorScope().then((e) =>
        e ? `kernel "${spec.name}" failed to build: ${e.message}\n${numbered(code)}` : null
      ),
    );
    this.#pipelines.set(spec.code, p);
    this.#pipelineIds.set(p, this.#pipelineIds.size + 1);
    this.stats.pipelines++;
    return p;
  }

  #bindGroup(p: GPUComputePipeline, spec: KernelSpec): GPUBindGroup {
    const bufs: PooledBuffer[] = spec.bindings.map((t) => {
      t.storage.buffer; // throws on a released tensor
      return t.storage.buf;
    });
    const at = spec.bindings.map((t) => t.bindByteOffset);
    const key = `${this.#pipelineIds.get(p)}:${bufs.map((b, i) => `${b.id}@${at[i]}`).join(",")}`;
    let g = this.#bindGroups.get(key);
    if (g) return g;
    // Several read-only bindings of one buffer are fine; a writable one must be alone.
    const writable = writableBindings(spec.code);
    bufs.forEach((b, i) => {
      if (!writable.has(i)) return;
      const j = bufs.findIndex((o, k) => k !== i && o.id === b.id);
      if (j >= 0) {
        throw new KernelError(
          `kernel "${spec.name}": binding ${i} is written but its buffer is also bound at ${j} ` +
            `(${spec.bindings[i]} and ${spec.bindings[j]}); write into a separate tensor`,
        );
      }
    });
    if (this.#bindGroups.size > 20000) this.#bindGroups.clear();
    g = this.device.createBindGroup({
      layout: p.getBindGroupLayout(0),
      entries: bufs.map((b, i) => ({ binding: i, resource: { buffer: b.buffer, offset: at[i] } })),
    });
    this.#bindGroups.set(key, g);
    this.stats.bindGroups++;
    return g;
  }

  #ensurePass(): GPUComputePassEncoder {
    if (!this.#encoder) {
      this.device.pushErrorScope("validation");
      this.#encoder = this.device.createCommandEncoder();
    }
    if (!this.#pass) this.#pass = this.#encoder.beginComputePass();
    return this.#pass;
  }

  /** Records one dispatch; nothing waits on the GPU. */
  run(spec: KernelSpec): void {
    const [x, y, z] = spec.grid;
    if (x === 0 || y === 0 || z === 0) return;
    const max = this.gpu.description.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new KernelError(
        `kernel "${spec.name}": grid ${
          spec.grid.join("x")
        } exceeds ${max} workgroups per dimension`,
      );
    }
    const p = this.#pipeline(spec);
    const g = this.#bindGroup(p, spec);
    this.#command(
      { kind: "dispatch", name: spec.name, pipeline: p, bindGroup: g, grid: [x, y, z] },
      spec.bindings.map((t) => t.storage.buf),
    );
  }

  /** Encodes one command (and keeps it when capturing). */
  #command(c: GraphCommand, buffers: PooledBuffer[]): void {
    if (this.#capture) {
      this.#capture.commands.push(c);
      for (const b of buffers) this.#capture.buffers.add(b);
    }
    switch (c.kind) {
      case "dispatch": {
        this.#profile?.push({
          name: c.name,
          pipeline: c.pipeline,
          bindGroup: c.bindGroup,
          grid: c.grid,
        });
        const pass = this.#ensurePass();
        pass.setPipeline(c.pipeline);
        pass.setBindGroup(0, c.bindGroup);
        pass.dispatchWorkgroups(...c.grid);
        this.stats.dispatches++;
        break;
      }
      case "clear":
        this.#endPass().clearBuffer(c.buffer, c.offset, c.size);
        break;
      case "copy":
        this.#endPass().copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.size);
        break;
      case "host":
        c.fn();
    }
  }

  /**
   * Runs host-side bookkeeping that belongs to a step (the optimiser's step count): now, and
   * again on every replay of a graph captured around it.
   */
  host(fn: () => void): void {
    this.#command({ kind: "host", fn }, []);
  }

  /**
   * Runs fn once, recording (and executing) its commands as usual, and returns them as a
   * Graph that replay() records again without running fn: see runtime/graph.ts for the
   * rules. Tensors fn returns are rewritten by every replay.
   */
  capture<T>(fn: () => T): { graph: Graph; result: T } {
    if (this.#capture) throw new Error("capture: graphs do not nest");
    const cap = this.#capture = {
      commands: [] as GraphCommand[],
      buffers: new Set<PooledBuffer>(),
      staging: [] as GPUBuffer[],
      allocated: new Set<Storage>(),
    };
    let result: T;
    try {
      result = fn();
    } catch (e) {
      // Commands recorded before the throw may read the constants: free them after the GPU.
      if (cap.staging.length) {
        this.#capture = null;
        this.flush();
        this.device.queue.onSubmittedWorkDone().then(() => cap.staging.forEach((s) => s.destroy()));
      }
      throw e;
    } finally {
      this.#capture = null;
    }
    return { graph: new Graph(cap.commands, [...cap.buffers], cap.staging, this), result };
  }

  /** Records a captured graph's commands again (and runs its host effects). */
  replay(g: Graph): void {
    if (g.disposed) throw new Error("replay: the graph was disposed");
    if (this.#capture) throw new Error("replay: not inside capture()");
    for (const c of g.commands) this.#command(c, []);
  }

  /** Starts (or stops) collecting every dispatch for replayProfile(). */
  profiling(on: boolean): void {
    this.#profile = on ? [] : null;
  }

  /**
   * Times each dispatch collected since profiling(true) by replaying it alone `reps` times
   * between host syncs, minus the cost of an empty sync; returns ms per kernel name (summed
   * over the collected dispatches, averaged over reps). Works on every adapter (lavapipe's
   * timestamp queries read zero). Values computed by replays are garbage: profile, then
   * discard the state.
   */
  async replayProfile(
    reps = 5,
  ): Promise<Map<string, { ms: number; count: number; workgroups: number }>> {
    const recs = this.#profile ?? [];
    this.#profile = null;
    await this.sync();
    const timeSubmit = async (fn: (pass: GPUComputePassEncoder) => void) => {
      const enc = this.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      fn(pass);
      pass.end();
      const t0 = performance.now();
      this.device.queue.submit([enc.finish()]);
      await this.device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    let base = Infinity;
    for (let i = 0; i < 5; i++) base = Math.min(base, await timeSubmit(() => {}));
    const out = new Map<string, { ms: number; count: number; workgroups: number }>();
    for (const r of recs) {
      const ms = await timeSubmit((pass) => {
        pass.setPipeline(r.pipeline);
        pass.setBindGroup(0, r.bindGroup);
        for (let i = 0; i < reps; i++) pass.dispatchWorkgroups(...r.grid);
      });
      const e = out.get(r.name) ?? { ms: 0, count: 0, workgroups: 0 };
      e.ms += Math.max(0, ms - base) / reps;
      e.count++;
      e.workgroups = r.grid[0] * r.grid[1] * r.grid[2];
      out.set(r.name, e);
    }
    return out;
  }

  /** Records a clear (zero fill) of a contiguous tensor: a memset, no kernel. */
  clear(t: Tensor): void {
    const e = BYTES_PER_ELEMENT[t.dtype];
    const start = t.offset * e, bytes = t.size * e;
    if (!t.isContiguous || start % 4 || bytes % 4) {
      throw new Error(`clear: ${t} must be contiguous and 4-byte aligned`);
    }
    this.#command({ kind: "clear", buffer: t.buffer, offset: start, size: bytes }, [t.storage.buf]);
  }

  /** Records a buffer copy of a contiguous range. */
  copy(src: Tensor, dst: Tensor): void {
    if (src.bytes !== dst.bytes || !src.isContiguous || !dst.isContiguous) {
      throw new Error(`copy: ${src} -> ${dst} needs equal contiguous sizes`);
    }
    const e = BYTES_PER_ELEMENT[src.dtype];
    this.#command({
      kind: "copy",
      src: src.buffer,
      srcOffset: src.offset * e,
      dst: dst.buffer,
      dstOffset: dst.offset * e,
      size: src.bytes,
    }, [src.storage.buf, dst.storage.buf]);
  }

  #endPass(): GPUCommandEncoder {
    this.#ensurePass();
    this.#pass!.end();
    this.#pass = null;
    return this.#encoder!;
  }

  /** Submits everything recorded so far as one command buffer. Does not wait. */
  flush(): void {
    if (!this.#encoder) return;
    const enc = this.#endPass();
    this.device.queue.submit([enc.finish()]);
    this.#encoder = null;
    this.stats.submits++;
    this.#errors.push(
      this.device.popErrorScope().then((e) => e ? `GPU validation error: ${e.message}` : null),
    );
  }

  /** Throws the first WebGPU error reported since the last check. */
  async checkErrors(): Promise<void> {
    const pending = this.#errors;
    this.#errors = [];
    for (const msg of await Promise.all(pending)) if (msg) throw new KernelError(msg);
  }

  /** Waits until the GPU has finished everything submitted (a host sync: ~12 ms on llvmpipe). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  /** Reads a tensor back to the host (explicit and asynchronous: never call it in a hot loop). */
  async read(t: Tensor): Promise<HostArray> {
    return (await this.readMany([t]))[0];
  }

  /**
   * Reads several tensors (contiguous or strided views) with one host sync: each view's
   * element span is copied into one staging buffer, then sliced or gathered by strides.
   */
  async readMany(ts: readonly Tensor[]): Promise<HostArray[]> {
    const spans = ts.map((t) => {
      const e = BYTES_PER_ELEMENT[t.dtype];
      let span = t.size ? 1 : 0; // elements from the first to the last of the view
      for (let i = 0; i < t.rank && t.size; i++) span += (t.shape[i] - 1) * t.strides[i];
      const start = t.offset * e, aligned = start - (start % 4);
      return {
        aligned,
        skip: start - aligned,
        bytes: Math.ceil((start - aligned + span * e) / 4) * 4,
      };
    });
    const total = spans.reduce((a, s) => a + s.bytes, 0);
    const empty = (
      t: Tensor,
    ): HostArray => (t.dtype === "i32" ? new Int32Array(0) : new Float32Array(0));
    if (total === 0) return ts.map(empty);
    const staging = this.device.createBuffer({
      size: total,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.#endPass();
    let at = 0;
    ts.forEach((t, i) => {
      if (spans[i].bytes) {
        enc.copyBufferToBuffer(t.buffer, spans[i].aligned, staging, at, spans[i].bytes);
      }
      at += spans[i].bytes;
    });
    this.flush();
    this.stats.readbacks++;
    await staging.mapAsync(GPUMapMode.READ);
    const raw = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    await this.checkErrors();
    at = 0;
    return ts.map((t, i) => {
      const { skip, bytes } = spans[i];
      const region = raw.slice(at + skip, at + bytes);
      at += bytes;
      if (t.size === 0) return empty(t);
      const e = BYTES_PER_ELEMENT[t.dtype];
      const flat: ArrayLike<number> = t.dtype === "f16"
        ? new Uint16Array(region, 0, Math.floor(region.byteLength / e))
        : t.dtype === "i32"
        ? new Int32Array(region, 0, Math.floor(region.byteLength / e))
        : new Float32Array(region, 0, Math.floor(region.byteLength / e));
      const out = t.dtype === "i32" ? new Int32Array(t.size) : new Float32Array(t.size);
      const conv = t.dtype === "f16" ? f16BitsToF32 : (v: number) => v;
      if (t.isContiguous && t.dtype !== "f16") {
        out.set((flat as Float32Array | Int32Array).subarray(0, t.size));
        return out;
      }
      const idx = new Array<number>(t.rank).fill(0);
      for (let n = 0; n < t.size; n++) {
        let off = 0;
        for (let d = 0; d < t.rank; d++) off += idx[d] * t.strides[d];
        out[n] = conv(flat[off]);
        for (let d = t.rank - 1; d >= 0; d--) {
          if (++idx[d] < t.shape[d]) break;
          idx[d] = 0;
        }
      }
      return out;
    });
  }

  /** Reads a one-element tensor. */
  async item(t: Tensor): Promise<number> {
    return (await this.read(t))[0];
  }

  destroy(): void {
    this.flush();
    this.pool.trim();
  }
}

function concatU16(a: Uint16Array, b: Uint16Array): Uint16Array {
  const out = new Uint16Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function collectStorages(v: unknown, into: Set<Storage>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== "object") return;
  if (v instanceof Tensor) {
    into.add(v.storage);
    return;
  }
  if (Array.isArray(v)) { for (const x of v) collectStorages(x, into, depth + 1); }
  else if (Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collectStorages(x, into, depth + 1);
  }
}

const writableCache = new Map<string, Set<number>>();
/** Binding indices declared `var<storage, read_write>` in a kernel's WGSL. */
function writableBindings(code: string): Set<number> {
  let w = writableCache.get(code);
  if (!w) {
    w = new Set();
    for (const m of code.matchAll(/@binding\((\d+)\)\s*var<storage,\s*read_write>/g)) {
      w.add(Number(m[1]));
    }
    writableCache.set(code, w);
  }
  return w;
}

function numbered(code: string): string {
  return code.split("\n").map((l, i) => `${String(i + 1).padStart(4)}| ${l}`).join("\n");
}

/** Host data as the bytes of t's dtype (f16 padded to 4 bytes). */
function hostBytes(t: Tensor, data: ArrayLike<number>): ArrayBufferView {
  if (t.dtype === "f16") {
    const h = toF16Array(data);
    return h.length % 2 ? concatU16(h, new Uint16Array(1)) : h;
  }
  if (t.dtype === "i32") return data instanceof Int32Array ? data : Int32Array.from(data);
  return data instanceof Float32Array ? data : Float32Array.from(data);
}
