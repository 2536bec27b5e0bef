// Zip archives as PyTorch writes them (torch.save's zip format): the central directory (zip64
// included) read once, then members read one at a time from the open file, stored or deflated,
// each checked against its declared sizes and CRC-32 before it is used; and a writer of stored
// members aligned to 64 bytes, PyTorch's own layout. Every size is checked against the file's
// before anything that large is allocated. (io/npz.ts has its own reader for .npz files.)
import { inflateRawSync } from "node:zlib";

export class ZipError extends Error {
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "ZipError";
  }
}

/** One member, as the central directory describes it. */
export interface ZipEntry {
  name: string;
  /** 0: stored, 8: deflated (nothing else is read). */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localOffset: number;
}

/** An open archive: its members by name; `read` fetches one, checked (calls may overlap). */
export interface ZipReader {
  file: string;
  entries: Map<string, ZipEntry>;
  read(entry: ZipEntry): Promise<Uint8Array>;
  close(): void;
}

const EOCD = 0x06054b50, ZIP64_LOCATOR = 0x07064b50, ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50, LOCAL = 0x04034b50;

/** Opens a zip file and reads its central directory. */
export async function openZip(path: string): Promise<ZipReader> {
  const f = await Deno.open(path).catch((e) => {
    throw new ZipError(path, `cannot open (${e.message})`);
  });
  try {
    const size = (await f.stat()).size;
    const entries = await readDirectory(f, path, size);
    let last: Promise<unknown> = Promise.resolve(); // one file position: reads take turns
    return {
      file: path,
      entries,
      read: (e) => {
        const r = last.then(() => readMember(f, path, size, e));
        last = r.catch(() => {});
        return r;
      },
      close: () => f.close(),
    };
  } catch (e) {
    f.close();
    throw e;
  }
}

async function readExactly(
  f: Deno.FsFile,
  path: string,
  offset: number,
  n: number,
): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  await f.seek(offset, Deno.SeekMode.Start);
  for (let at = 0; at < n;) {
    const k = await f.read(buf.subarray(at));
    if (k === null) throw new ZipError(path, `the file ends ${n - at} bytes early`);
    at += k;
  }
  return buf;
}

async function readDirectory(
  f: Deno.FsFile,
  path: string,
  size: number,
): Promise<Map<string, ZipEntry>> {
  const fail = (problem: string): never => {
    throw new ZipError(path, problem);
  };
  const tailAt = Math.max(0, size - 65557); // the end record and a comment of at most 64 KiB
  const tail = await readExactly(f, path, tailAt, size - tailAt);
  const dv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0 && eocd < 0; i--) {
    if (dv.getUint32(i, true) === EOCD) eocd = i;
  }
  if (eocd < 0) fail("not a zip file, or a truncated one (no end of central directory)");
  let count = dv.getUint16(eocd + 10, true);
  let dirSize = dv.getUint32(eocd + 12, true), dirAt = dv.getUint32(eocd + 16, true);
  const loc = eocd - 20;
  if (loc >= 0 && dv.getUint32(loc, true) === ZIP64_LOCATOR) {
    const at = Number(dv.getBigUint64(loc + 8, true));
    if (at + 56 > size) fail(`zip64 end record at byte ${at} is past the end (${size} bytes)`);
    const z = new DataView((await readExactly(f, path, at, 56)).buffer);
    if (z.getUint32(0, true) !== ZIP64_EOCD) fail(`no zip64 end record at byte ${at}`);
    count = Number(z.getBigUint64(32, true));
    dirSize = Number(z.getBigUint64(40, true));
    dirAt = Number(z.getBigUint64(48, true));
  }
  if (dirAt + dirSize > size || count * 46 > dirSize) {
    fail(`central directory (${count} entries, ${dirSize} bytes at ${dirAt}) does not fit`);
  }
  const dir = await readExactly(f, path, dirAt, dirSize);
  const v = new DataView(dir.buffer);
  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > dirSize || v.getUint32(at, true) !== CENTRAL) {
      fail(`damaged central directory (entry ${i} at byte ${dirAt + at})`);
    }
    const n = v.getUint16(at + 28, true), extra = v.getUint16(at + 30, true);
    const comment = v.getUint16(at + 32, true);
    if (at + 46 + n + extra + comment > dirSize) fail(`damaged central directory (entry ${i})`);
    const name = new TextDecoder().decode(dir.subarray(at + 46, at + 46 + n));
    const e: ZipEntry = {
      name,
      method: v.getUint16(at + 10, true),
      crc32: v.getUint32(at + 16, true),
      compressedSize: v.getUint32(at + 20, true),
      size: v.getUint32(at + 24, true),
      localOffset: v.getUint32(at + 42, true),
    };
    // zip64 extra field: the fields that read 0xffffffff, in this order
    for (let x = at + 46 + n; x + 4 <= at + 46 + n + extra;) {
      const id = v.getUint16(x, true), len = v.getUint16(x + 2, true);
      if (id === 1) {
        let k = x + 4;
        const next =
          () => (k + 8 <= x + 4 + len ? (k += 8, Number(v.getBigUint64(k - 8, true))) : fail(
            `damaged zip64 field of ${name}`,
          ));
        if (e.size === 0xffffffff) e.size = next();
        if (e.compressedSize === 0xffffffff) e.compressedSize = next();
        if (e.localOffset === 0xffffffff) e.localOffset = next();
      }
      x += 4 + len;
    }
    if (e.localOffset + 30 + e.compressedSize > size) {
      fail(`member ${name} (${e.compressedSize} bytes at ${e.localOffset}) is past the end`);
    }
    entries.set(name, e);
    at += 46 + n + extra + comment;
  }
  return entries;
}

async function readMember(
  f: Deno.FsFile,
  path: string,
  size: number,
  e: ZipEntry,
): Promise<Uint8Array> {
  const fail = (problem: string): never => {
    throw new ZipError(path, `member ${e.name}: ${problem}`);
  };
  const h = new DataView((await readExactly(f, path, e.localOffset, 30)).buffer);
  if (h.getUint32(0, true) !== LOCAL) fail(`no local header at byte ${e.localOffset}`);
  const dataAt = e.localOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
  if (dataAt + e.compressedSize > size) fail("its data runs past the end of the file");
  let bytes: Uint8Array;
  if (e.method === 0) {
    if (e.compressedSize !== e.size) fail("stored, but its two sizes differ");
    bytes = await readExactly(f, path, dataAt, e.size);
  } else if (e.method === 8) {
    const packed = await readExactly(f, path, dataAt, e.compressedSize);
    try {
      // the declared size bounds the output, so a zip bomb stops there
      bytes = inflateRawSync(packed, { maxOutputLength: Math.max(1, e.size) });
    } catch (x) {
      return fail(`cannot inflate (${(x as Error).message})`);
    }
    if (bytes.length !== e.size) fail(`inflates to ${bytes.length} bytes, not ${e.size}`);
  } else {
    return fail(`compression method ${e.method} is not supported`);
  }
  if (crc32(bytes) !== e.crc32) fail("CRC-32 mismatch (the file is damaged)");
  return bytes;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256 * 4);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let s = 1; s < 4; s++) {
      t[s * 256 + n] = (t[(s - 1) * 256 + n] >>> 8) ^ t[t[(s - 1) * 256 + n] & 0xff];
    }
  }
  return t;
})();

/** CRC-32 (zip's), four bytes a step. */
export function crc32(b: Uint8Array): number {
  let c = 0xffffffff, i = 0;
  for (; i + 4 <= b.length; i += 4) {
    c ^= b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
    c = CRC_TABLE[768 + (c & 0xff)] ^ CRC_TABLE[512 + ((c >>> 8) & 0xff)] ^
      CRC_TABLE[256 + ((c >>> 16) & 0xff)] ^ CRC_TABLE[c >>> 24];
  }
  for (; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A zip of stored members, each's data aligned to 64 bytes by padding in its local header's
 * extra field (as PyTorch's writer does). Archives past 4 GiB (zip64) are refused.
 */
export function zipStored(members: { name: string; data: Uint8Array }[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [], central: Uint8Array[] = [];
  let at = 0;
  for (const m of members) {
    const name = enc.encode(m.name), crc = crc32(m.data);
    const pad = (64 - ((at + 30 + name.length + 4) % 64)) % 64;
    const local = new Uint8Array(30 + name.length + 4 + pad);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, LOCAL, true);
    lv.setUint16(4, 20, true); // version needed
    lv.setUint32(14, crc, true);
    lv.setUint32(18, m.data.length, true);
    lv.setUint32(22, m.data.length, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, 4 + pad, true);
    local.set(name, 30);
    lv.setUint16(30 + name.length, 0x4246, true); // "FB": padding
    lv.setUint16(32 + name.length, pad, true);
    const c = new Uint8Array(46 + name.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, CENTRAL, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, m.data.length, true);
    cv.setUint32(24, m.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, at, true);
    c.set(name, 46);
    parts.push(local, m.data);
    central.push(c);
    at += local.length + m.data.length;
  }
  const dirSize = central.reduce((s, c) => s + c.length, 0);
  if (at + dirSize > 0xffffffff || members.length > 0xffff) {
    throw new ZipError("<zip>", "archives past 4 GiB or 65535 members (zip64) are not written");
  }
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, EOCD, true);
  ev.setUint16(8, members.length, true);
  ev.setUint16(10, members.length, true);
  ev.setUint32(12, dirSize, true);
  ev.setUint32(16, at, true);
  const out = new Uint8Array(at + dirSize + 22);
  let o = 0;
  for (const p of [...parts, ...central, end]) (out.set(p, o), o += p.length);
  return out;
}
