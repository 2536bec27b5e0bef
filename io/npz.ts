// .npy arrays read in place, a sample at a time, from a file or from inside an .npz (a zip of
// .npy members, as numpy.savez writes it, zip64 included): the GCN repositories' datasets are
// gigabytes, so only the header is parsed and each read fetches one slice.
import { inflateRawSync } from "node:zlib";
import { NpyError } from "./npy.ts";

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

const SIZES: Record<NpyRef["dtype"], number> = {
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
  return {
    dtype,
    shape: shape.split(",").map((s) => s.trim()).filter(Boolean).map(Number),
    dataStart: start,
  };
}

async function readAt(f: Deno.FsFile, offset: number, n: number): Promise<Uint8Array> {
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
    if (h.dataStart + count(ref) * SIZES[ref.dtype] > size) {
      throw new NpyError(path, `${h.shape.join(" x ")} ${h.dtype} values run past the end`);
    }
    return ref;
  } finally {
    f.close();
  }
}

const count = (r: { shape: number[] }) => r.shape.reduce((a, b) => a * b, 1);

/** The members of an .npz, by name without ".npy". */
export async function openNpz(path: string): Promise<Map<string, NpyRef>> {
  const f = await Deno.open(path).catch((e) => {
    throw new NpyError(path, `cannot open (${e.message})`);
  });
  try {
    const size = (await f.stat()).size;
    const tail = await readAt(f, Math.max(0, size - 65557), Math.min(size, 65557));
    const dv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (dv.getUint32(i, true) === 0x06054b50) (eocd = i, i = -1);
    }
    if (eocd < 0) throw new NpyError(path, "not a zip (.npz) file: no end of central directory");
    let entries = dv.getUint16(eocd + 10, true), dirOffset = dv.getUint32(eocd + 16, true);
    const loc = eocd - 20; // zip64 end-of-central-directory locator
    if (loc >= 0 && dv.getUint32(loc, true) === 0x07064b50) {
      const z = await readAt(f, Number(dv.getBigUint64(loc + 8, true)), 56);
      const zv = new DataView(z.buffer);
      entries = Number(zv.getBigUint64(32, true));
      dirOffset = Number(zv.getBigUint64(48, true));
    }
    const out = new Map<string, NpyRef>();
    let at = dirOffset;
    for (let e = 0; e < entries; e++) {
      const h = await readAt(f, at, 46);
      const hv = new DataView(h.buffer);
      if (h.length < 46 || hv.getUint32(0, true) !== 0x02014b50) {
        throw new NpyError(path, `damaged zip directory at byte ${at}`);
      }
      const method = hv.getUint16(10, true), n = hv.getUint16(28, true);
      const extraLen = hv.getUint16(30, true), comment = hv.getUint16(32, true);
      const rest = await readAt(f, at + 46, n + extraLen);
      const name = new TextDecoder().decode(rest.subarray(0, n));
      let csize = hv.getUint32(20, true), local = hv.getUint32(42, true);
      // zip64 extra field: the 0xffffffff fields, in order (uncompressed, compressed, offset)
      const ev = new DataView(rest.buffer, rest.byteOffset + n, extraLen);
      for (let x = 0; x + 4 <= extraLen;) {
        const id = ev.getUint16(x, true), len = ev.getUint16(x + 2, true);
        if (id === 1) {
          let k = x + 4;
          if (hv.getUint32(24, true) === 0xffffffff) k += 8;
          if (csize === 0xffffffff) (csize = Number(ev.getBigUint64(k, true)), k += 8);
          if (local === 0xffffffff) local = Number(ev.getBigUint64(k, true));
        }
        x += 4 + len;
      }
      at += 46 + n + extraLen + comment;
      const lh = new DataView((await readAt(f, local, 30)).buffer);
      const dataAt = local + 30 + lh.getUint16(26, true) + lh.getUint16(28, true);
      const where = `${path} [${name}]`;
      let ref: NpyRef;
      if (method === 0) {
        const h2 = npyHeader(await readAt(f, dataAt, 4096), where);
        ref = {
          file: path,
          member: name,
          shape: h2.shape,
          dtype: h2.dtype,
          offset: dataAt + h2.dataStart,
        };
      } else if (method === 8) {
        const bytes = inflateRawSync(await readAt(f, dataAt, csize));
        const h2 = npyHeader(bytes.subarray(0, 4096), where);
        ref = {
          file: path,
          member: name,
          shape: h2.shape,
          dtype: h2.dtype,
          offset: 0,
          bytes: bytes.subarray(h2.dataStart),
        };
      } else {
        throw new NpyError(where, `zip compression method ${method} is not supported`);
      }
      out.set(name.replace(/\.npy$/, ""), ref);
    }
    return out;
  } finally {
    f.close();
  }
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
  const b = bytes.buffer;
  switch (ref.dtype) {
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
    case "<f2": {
      const { f16BitsToF32 } = await import("../runtime/dtype.ts");
      return Float32Array.from(new Uint16Array(b), f16BitsToF32);
    }
  }
}
