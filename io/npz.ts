// .npz files (a zip of .npy members, as numpy.savez writes it, zip64 included), read in place:
// each member is located and its header parsed; samples are then read with readSlice.
import { inflateRawSync } from "node:zlib";
import { NpyError, npyHeader, type NpyRef, readAt } from "./npy.ts";

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
