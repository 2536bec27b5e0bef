// NumPy .npy arrays (format 1.0-3.0, little-endian, C order): whole (a single sequence for
// `heatformer predict`) or in place, a slice at a time (the GCN repositories' datasets are
// gigabytes: only the header is parsed, and each read fetches one sample).
import { located } from "./errors.ts";
import { f16BitsToF32 } from "../runtime/dtype.ts";

export class NpyError extends Error {
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "NpyError";
    // `file` may be "FILE.npz [member.npy]": the member is the record
    const m = /^(.*) \[([^\]]+)\]$/.exec(file);
    located(this, m ? m[1] : file, m?.[2]);
  }
}

/** An array stored as raw little-endian C-order data at `offset` of a file. */
export interface NpyRef {
  file: string;
  /** The member name inside an .npz, for messages. */
  member?: string;
  shape: number[];
  dtype: "<f4" | "<f8" | "<f2" | "<i4" | "<i8" | "|u1" | "|b1";
  offset: number;
  /** Inflated bytes of a compressed .npz member (held in memory), else read from the file. */
  bytes?: Uint8Array;
}

export const SIZES: Record<NpyRef["dtype"], number> = {
  "<f4": 4,
  "<f8": 8,
  "<f2": 2,
  "<i4": 4,
  "<i8": 8,
  "|u1": 1,
  "|b1": 1,
};

/** Parses an .npy header at the start of `head`; returns the array's description. */
export function npyHeader(head: Uint8Array, where: string): Omit<NpyRef, "file" | "offset"> & {
  dataStart: number;
} {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (head.length < 10 || magic.some((m, i) => head[i] !== m)) {
    throw new NpyError(where, "not an .npy array (no \\x93NUMPY magic)");
  }
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const v2 = head[6] >= 2;
  const hlen = v2 ? dv.getUint32(8, true) : dv.getUint16(8, true);
  const start = (v2 ? 12 : 10) + hlen;
  if (start > head.length) throw new NpyError(where, "header longer than read");
  const text = new TextDecoder().decode(head.subarray(v2 ? 12 : 10, start));
  const descr = text.match(/'descr':\s*'([^']+)'/)?.[1];
  const shape = text.match(/'shape':\s*\(([^)]*)\)/)?.[1];
  if (!descr || shape === undefined || /'fortran_order':\s*True/.test(text)) {
    throw new NpyError(where, `unsupported header ${JSON.stringify(text.trim())}`);
  }
  const dtype = descr.replace(/^=/, "<") as NpyRef["dtype"];
  if (!(dtype in SIZES)) throw new NpyError(where, `dtype ${descr} is not supported`);
  const dims = shape.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const n = dims.reduce((a, b) => a * b, SIZES[dtype]);
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0) || !Number.isSafeInteger(n)) {
    throw new NpyError(where, `shape (${shape}) is not a list of array sizes`);
  }
  return { dtype, shape: dims, dataStart: start };
}

/** Bytes an array's values take. */
export const byteSize = (r: { shape: number[]; dtype: NpyRef["dtype"] }) =>
  count(r) * SIZES[r.dtype];

export async function readAt(f: Deno.FsFile, offset: number, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  await f.seek(offset, Deno.SeekMode.Start);
  let at = 0;
  while (at < n) {
    const k = await f.read(buf.subarray(at));
    if (k === null) break;
    at += k;
  }
  return buf.subarray(0, at);
}

export async function openNpy(path: string): Promise<NpyRef> {
  const f = await Deno.open(path).catch((e) => {
    throw new NpyError(path, `cannot open (${e.message})`);
  });
  try {
    const h = npyHeader(await readAt(f, 0, 4096), path);
    const size = (await f.stat()).size;
    const ref: NpyRef = { file: path, shape: h.shape, dtype: h.dtype, offset: h.dataStart };
    if (h.dataStart + byteSize(ref) > size) {
      throw new NpyError(path, `${h.shape.join(" x ")} ${h.dtype} values run past the end`);
    }
    return ref;
  } finally {
    f.close();
  }
}

export const count = (r: { shape: number[] }) => r.shape.reduce((a, b) => a * b, 1);

/** Raw little-endian values of a dtype as float32. */
export function toFloat32(dtype: NpyRef["dtype"], bytes: Uint8Array): Float32Array {
  const b = bytes.slice().buffer;
  switch (dtype) {
    case "<f4":
      return new Float32Array(b);
    case "<f8":
      return Float32Array.from(new Float64Array(b));
    case "<i4":
      return Float32Array.from(new Int32Array(b));
    case "<i8":
      return Float32Array.from(new BigInt64Array(b), Number);
    case "|u1":
    case "|b1":
      return Float32Array.from(new Uint8Array(b));
    case "<f2":
      return Float32Array.from(new Uint16Array(b), f16BitsToF32);
  }
}

/** A whole .npy array as float32 with its shape. */
export function parseNpy(bytes: Uint8Array, file: string): { shape: number[]; data: Float32Array } {
  const h = npyHeader(bytes.subarray(0, 65536), file);
  const n = count(h) * SIZES[h.dtype];
  if (bytes.length - h.dataStart < n) {
    throw new NpyError(file, `${h.shape.join(" x ")} ${h.dtype} values run past the end`);
  }
  return { shape: h.shape, data: toFloat32(h.dtype, bytes.subarray(h.dataStart, h.dataStart + n)) };
}

export async function readNpy(path: string): Promise<{ shape: number[]; data: Float32Array }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new NpyError(path, `cannot read (${(e as Error).message})`);
  }
  return parseNpy(bytes, path);
}

/** Elements [start, start + n) of an array (row-major), as float32. */
export async function readSlice(ref: NpyRef, start: number, n: number): Promise<Float32Array> {
  const size = SIZES[ref.dtype];
  const bytes = ref.bytes ? ref.bytes.slice(start * size, (start + n) * size) : await (async () => {
    const f = await Deno.open(ref.file);
    try {
      return (await readAt(f, ref.offset + start * size, n * size)).slice();
    } finally {
      f.close();
    }
  })();
  if (bytes.length !== n * size) {
    throw new NpyError(
      ref.member ? `${ref.file} [${ref.member}]` : ref.file,
      "truncated array data",
    );
  }
  return toFloat32(ref.dtype, bytes);
}
