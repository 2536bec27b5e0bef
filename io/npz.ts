// .npz files (a zip of .npy members, as numpy.savez writes it, zip64 included), read in place:
// each member is located and its header parsed; samples are then read with readSlice.
import { constants, inflateRawSync } from "node:zlib";
import { byteSize, NpyError, npyHeader, type NpyRef, readAt } from "./npy.ts";

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
      let usize = hv.getUint32(24, true);
      // zip64 extra field: the 0xffffffff fields, in order (uncompressed, compressed, offset)
      const ev = new DataView(rest.buffer, rest.byteOffset + n, extraLen);
      for (let x = 0; x + 4 <= extraLen;) {
        const id = ev.getUint16(x, true), len = ev.getUint16(x + 2, true);
        if (id === 1) {
          let k = x + 4;
          if (usize === 0xffffffff) (usize = Number(ev.getBigUint64(k, true)), k += 8);
          if (csize === 0xffffffff) (csize = Number(ev.getBigUint64(k, true)), k += 8);
          if (local === 0xffffffff) local = Number(ev.getBigUint64(k, true));
        }
        x += 4 + len;
      }
      at += 46 + n + extraLen + comment;
      const lh = new DataView((await readAt(f, local, 30)).buffer);
      const dataAt = local + 30 + lh.getUint16(26, true) + lh.getUint16(28, true);
      const where = `${path} [${name}]`;
      if (!(dataAt + csize <= size)) {
        throw new NpyError(where, `its ${csize} bytes run past the end of the file`);
      }
      const ref = method === 0
        ? await storedMember(f, { dataAt, csize, usize }, where)
        : method === 8
        ? await deflatedMember(f, { dataAt, csize, usize }, where)
        : null;
      if (!ref) throw new NpyError(where, `zip compression method ${method} is not supported`);
      ref.file = path;
      ref.member = name;
      out.set(name.replace(/\.npy$/, ""), ref);
    }
    return out;
  } catch (e) {
    if (e instanceof NpyError) throw e;
    // a damaged offset or length sends a read outside what was read
    throw new NpyError(path, `damaged zip (${(e as Error).message})`);
  } finally {
    f.close();
  }
}

/** Where a member's bytes are: at `dataAt`, `csize` bytes compressed, `usize` inflated. */
interface Span {
  dataAt: number;
  csize: number;
  usize: number;
}

/**
 * The most bytes a compressed member may inflate to, held in memory; larger arrays are read in
 * place from an uncompressed .npz (numpy.savez, not savez_compressed).
 */
export const MAX_INFLATED = 1 << 30;

/** A stored (uncompressed) member: read in place; its values must lie inside its bytes. */
async function storedMember(f: Deno.FsFile, s: Span, where: string): Promise<NpyRef> {
  const h = npyHeader(await readAt(f, s.dataAt, Math.min(s.csize, 65536)), where);
  const need = h.dataStart + byteSize(h);
  if (need > s.csize || s.csize !== s.usize) {
    throw new NpyError(
      where,
      `${h.shape.join(" x ")} ${h.dtype} values need ${need} bytes, the member has ${s.csize}`,
    );
  }
  return { file: "", shape: h.shape, dtype: h.dtype, offset: s.dataAt + h.dataStart };
}

/**
 * A deflated member, inflated into memory only after its declared size is checked: it must be
 * what its .npy header's shape x dtype needs and at most MAX_INFLATED, and inflating stops
 * there (a zip bomb's few compressed bytes cannot ask for gigabytes).
 */
async function deflatedMember(f: Deno.FsFile, s: Span, where: string): Promise<NpyRef> {
  const compressed = await readAt(f, s.dataAt, s.csize);
  // 1 KiB inflates to at most about 1 MB: enough for any header, bounded for any input
  const head = inflateRawSync(compressed.subarray(0, 1024), {
    finishFlush: constants.Z_SYNC_FLUSH,
  });
  const h = npyHeader(head.subarray(0, 65536), where);
  const need = h.dataStart + byteSize(h);
  if (need !== s.usize) {
    throw new NpyError(
      where,
      `declares ${s.usize} bytes inflated, its header's ${
        h.shape.join(" x ")
      } ${h.dtype} needs ${need}`,
    );
  }
  if (need > MAX_INFLATED) {
    throw new NpyError(
      where,
      `a compressed member of ${need} bytes (at most ${MAX_INFLATED}): save it with numpy.savez, uncompressed`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = inflateRawSync(compressed, { maxOutputLength: Math.max(1, need) });
  } catch (e) {
    throw new NpyError(where, `cannot inflate (${(e as Error).message})`);
  }
  if (bytes.length !== need) {
    throw new NpyError(where, `inflates to ${bytes.length} bytes, not ${need}`);
  }
  // a plain Uint8Array view: a Buffer's slice() shares memory, and readSlice copies by slice()
  const plain = new Uint8Array(bytes.buffer, bytes.byteOffset + h.dataStart, need - h.dataStart);
  return { file: "", shape: h.shape, dtype: h.dtype, offset: 0, bytes: plain };
}
