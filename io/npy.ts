// A NumPy .npy reader (format 1.0-3.0, little-endian float32 / float64 / float16 / int,
// C order) for single sequences handed to `heatformer predict`.
import { f16BitsToF32 } from "../runtime/dtype.ts";

export class NpyError extends Error {
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "NpyError";
  }
}

const KINDS: Record<string, [number, (b: ArrayBuffer, o: number, n: number) => ArrayLike<number>]> =
  {
    "<f4": [4, (b, o, n) => new Float32Array(b, o, n)],
    "<f8": [8, (b, o, n) => new Float64Array(b, o, n)],
    "<f2": [2, (b, o, n) => Float32Array.from(new Uint16Array(b, o, n), f16BitsToF32)],
    "<i4": [4, (b, o, n) => new Int32Array(b, o, n)],
    "<i8": [8, (b, o, n) => Array.from(new BigInt64Array(b, o, n), Number)],
  };

/** An array as float32 with its shape. */
export function parseNpy(bytes: Uint8Array, file: string): { shape: number[]; data: Float32Array } {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) {
    throw new NpyError(file, "not a .npy file (no \\x93NUMPY magic)");
  }
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = major >= 2 ? dv.getUint32(8, true) : dv.getUint16(8, true);
  const start = (major >= 2 ? 12 : 10) + hlen;
  if (start > bytes.length) throw new NpyError(file, "header past the end of the file");
  const header = new TextDecoder().decode(bytes.subarray(major >= 2 ? 12 : 10, start));
  const descr = header.match(/'descr':\s*'([^']+)'/)?.[1];
  const fortran = header.match(/'fortran_order':\s*(True|False)/)?.[1];
  const shapeText = header.match(/'shape':\s*\(([^)]*)\)/)?.[1];
  if (!descr || !fortran || shapeText === undefined) {
    throw new NpyError(file, `unreadable header ${JSON.stringify(header.trim())}`);
  }
  if (fortran === "True") throw new NpyError(file, "Fortran-ordered arrays are not supported");
  const kind = KINDS[descr.replace("|", "<")];
  if (!kind) throw new NpyError(file, `dtype ${descr} is not supported (float16/32/64, int32/64)`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - start < n * kind[0]) {
    throw new NpyError(
      file,
      `${n} values of ${descr} do not fit in the ${bytes.length - start} bytes left`,
    );
  }
  const copy = bytes.slice(start, start + n * kind[0]).buffer;
  return { shape, data: Float32Array.from(kind[1](copy, 0, n)) };
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
