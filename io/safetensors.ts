// The safetensors format (8-byte little-endian header length, JSON header, raw data), so
// checkpoints and fixtures are readable by PyTorch and other tools.
import { f16BitsToF32, toF16Array } from "../runtime/dtype.ts";

export type StDtype = "F32" | "F16" | "I32" | "I64" | "F64";

export interface NamedTensor {
  dtype: StDtype;
  shape: number[];
  data: Float32Array | Int32Array | Float64Array | Uint16Array | BigInt64Array;
}

export interface SafeTensors {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "SafetensorsError";
  }
}

const SIZE: Record<StDtype, number> = { F32: 4, F16: 2, I32: 4, I64: 8, F64: 8 };

export function parseSafetensors(bytes: Uint8Array, file = "<memory>"): SafeTensors {
  if (bytes.byteLength < 8) throw new SafetensorsError(file, "too short for a safetensors header");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > bytes.byteLength - 8) throw new SafetensorsError(file, `header length ${n} past the end`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(file, `header is not JSON (${(e as Error).message})`);
  }
  const base = 8 + n;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = v as Record<string, string>;
      continue;
    }
    const info = v as { dtype: StDtype; shape: number[]; data_offsets: [number, number] };
    const size = SIZE[info.dtype];
    if (!size) {
      throw new SafetensorsError(file, `tensor "${name}" has unsupported dtype ${info.dtype}`);
    }
    const [s, e] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (e - s !== count * size || base + e > bytes.byteLength) {
      throw new SafetensorsError(file, `tensor "${name}" has inconsistent offsets`);
    }
    const raw = bytes.slice(base + s, base + e).buffer;
    const data = info.dtype === "F32"
      ? new Float32Array(raw)
      : info.dtype === "F16"
      ? new Uint16Array(raw)
      : info.dtype === "I32"
      ? new Int32Array(raw)
      : info.dtype === "F64"
      ? new Float64Array(raw)
      : new BigInt64Array(raw);
    tensors.set(name, { dtype: info.dtype, shape: info.shape, data });
  }
  return { tensors, metadata };
}

export async function readSafetensors(path: string): Promise<SafeTensors> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new SafetensorsError(path, `cannot read (${(e as Error).message})`);
  }
  return parseSafetensors(bytes, path);
}

/** Float32 view of any numeric tensor. */
export function asFloat32(t: NamedTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  if (t.dtype === "F16") return Float32Array.from(t.data as Uint16Array, f16BitsToF32);
  if (t.data instanceof BigInt64Array) return Float32Array.from(t.data, Number);
  return Float32Array.from(t.data as ArrayLike<number>);
}

export function serializeSafetensors(
  tensors: Map<string, { dtype: "F32" | "F16" | "I32"; shape: number[]; data: ArrayLike<number> }>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let off = 0;
  for (const [name, t] of tensors) {
    const arr = t.dtype === "F16"
      ? toF16Array(t.data)
      : t.dtype === "I32"
      ? Int32Array.from(t.data)
      : Float32Array.from(t.data);
    const b = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + b.byteLength] };
    chunks.push(b);
    off += b.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.byteLength % 8)) % 8; // keep tensor data 8-byte aligned
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + json.byteLength + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let at = 8 + json.byteLength;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
