// A tensor: a shape, a dtype and a view (offset, strides) into GPU storage. Autograd state
// (the node that made it, its gradient) lives here too; the rules live in ops/.
import type { PooledBuffer } from "./buffer_pool.ts";
import { BYTES_PER_ELEMENT, type DType } from "./dtype.ts";
import type { Runtime } from "./runtime.ts";

export type Shape = readonly number[];

/** GPU memory shared by a tensor and its views. */
export class Storage {
  released = false;
  constructor(readonly buf: PooledBuffer, readonly persistent: boolean) {}
  get buffer(): GPUBuffer {
    if (this.released) throw new Error(`use of a released tensor buffer (#${this.buf.id})`);
    return this.buf.buffer;
  }
}

/** One recorded differentiable op: how to turn d(output) into d(inputs). */
export interface TapeNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Returns one gradient per input (null where the input needs none). */
  backward(dOut: Tensor): (Tensor | null)[];
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/** WebGPU's default minStorageBufferOffsetAlignment: every adapter supports it. */
export const BIND_ALIGN_BYTES = 256;

export class Tensor {
  readonly strides: readonly number[];
  /** Set when this tensor takes part in autograd. */
  requiresGrad = false;
  /** The op that produced it (null for leaves). */
  node: TapeNode | null = null;
  /** Accumulated gradient (leaves), filled by backward(). */
  grad: Tensor | null = null;
  name = "";
  #storage: Storage;
  #offset: number;

  constructor(
    readonly rt: Runtime,
    storage: Storage,
    readonly shape: Shape,
    readonly dtype: DType,
    offset = 0,
    strides?: readonly number[],
  ) {
    this.#storage = storage;
    this.#offset = offset;
    this.strides = strides ?? contiguousStrides(shape);
  }

  get storage(): Storage {
    return this.#storage;
  }
  /** Elements from the start of the buffer. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Elements from the start of this tensor's binding. Kernels bind a buffer from the last
   * BIND_ALIGN_BYTES boundary before the tensor (`bindByteOffset`) and bake only this rest
   * into their code, so tensors at different aligned places (the parameters in the
   * optimiser's arenas, the layers of a model) share one compiled kernel.
   */
  get bindOffset(): number {
    return this.#offset % (BIND_ALIGN_BYTES / BYTES_PER_ELEMENT[this.dtype]);
  }
  /** Where the binding of this tensor starts in its buffer, in bytes. */
  get bindByteOffset(): number {
    return (this.#offset - this.bindOffset) * BYTES_PER_ELEMENT[this.dtype];
  }

  /**
   * Points this (contiguous) tensor at another place holding its data: the optimiser packs
   * the parameters into arenas once, and the layers keep their Tensor objects. Views made
   * before keep the old place.
   */
  relocate(storage: Storage, offset: number): void {
    if (!this.isContiguous) throw new Error(`relocate: ${this} is not contiguous`);
    this.#storage = storage;
    this.#offset = offset;
  }

  get size(): number {
    return numel(this.shape);
  }
  get rank(): number {
    return this.shape.length;
  }
  get bytes(): number {
    return this.size * BYTES_PER_ELEMENT[this.dtype];
  }
  get buffer(): GPUBuffer {
    return this.storage.buffer;
  }
  get isContiguous(): boolean {
    const c = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d === 1 || c[i] === this.strides[i]);
  }
  toString(): string {
    return `Tensor(${this.name || "?"} ${this.dtype} ${shapeStr(this.shape)})`;
  }

  /** A view with another shape over the same elements (contiguous tensors only). */
  view(shape: Shape): Tensor {
    const s = resolveShape(shape, this.size);
    if (!this.isContiguous) {
      throw new Error(`view: ${this} is not contiguous; call contiguous() first`);
    }
    const t = new Tensor(this.rt, this.storage, s, this.dtype, this.offset);
    if (this.requiresGrad) {
      // A view is differentiable: its gradient is the incoming one viewed back.
      t.requiresGrad = true;
      t.node = { op: "view", inputs: [this], backward: (g) => [g.view(this.shape)] };
    }
    return t;
  }

  /** A view of entries [start, end) along dimension 0, without a copy. */
  slice0(start: number, end: number): Tensor {
    if (start < 0 || end > this.shape[0] || start >= end) {
      throw new RangeError(`slice0: [${start}, ${end}) out of range for ${this}`);
    }
    return new Tensor(
      this.rt,
      this.storage,
      [end - start, ...this.shape.slice(1)],
      this.dtype,
      this.offset + start * this.strides[0],
      this.strides,
    );
  }

  /** A view with permuted axes (no copy; kernels that need contiguity copy). */
  permuteView(axes: readonly number[]): Tensor {
    return new Tensor(
      this.rt,
      this.storage,
      axes.map((a) => this.shape[a]),
      this.dtype,
      this.offset,
      axes.map((a) => this.strides[a]),
    );
  }
}

/** Resolves a single -1 entry and checks the element count. */
export function resolveShape(shape: Shape, size: number): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) {
    const rest = numel(out.filter((_, i) => i !== free));
    out[free] = rest === 0 ? 0 : size / rest;
  }
  if (numel(out) !== size || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`cannot view ${size} elements as ${shapeStr(shape)}`);
  }
  return out;
}
