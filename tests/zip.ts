// A minimal zip writer for .npz test inputs: members stored or deflated, sizes as given (so a
// test can declare sizes that lie). CRCs are left 0: the .npz reader does not check them.
import { deflateRawSync } from "node:zlib";

export interface ZipMember {
  name: string;
  bytes: Uint8Array;
  deflate?: boolean;
  /** The uncompressed size to declare (default: the true one). */
  declaredSize?: number;
}

export function zipOf(members: ZipMember[]): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [], central: Uint8Array[] = [];
  let at = 0;
  for (const m of members) {
    const name = enc.encode(m.name);
    const data = m.deflate ? deflateRawSync(m.bytes) : m.bytes;
    const usize = m.declaredSize ?? m.bytes.length;
    const lh = new DataView(new ArrayBuffer(30));
    lh.setUint32(0, 0x04034b50, true);
    lh.setUint16(8, m.deflate ? 8 : 0, true);
    lh.setUint32(18, data.length, true);
    lh.setUint32(22, usize, true);
    lh.setUint16(26, name.length, true);
    const ch = new DataView(new ArrayBuffer(46));
    ch.setUint32(0, 0x02014b50, true);
    ch.setUint16(10, m.deflate ? 8 : 0, true);
    ch.setUint32(20, data.length, true);
    ch.setUint32(24, usize, true);
    ch.setUint16(28, name.length, true);
    ch.setUint32(42, at, true);
    locals.push(new Uint8Array(lh.buffer), name, data);
    central.push(new Uint8Array(ch.buffer), name);
    at += 30 + name.length + data.length;
  }
  const dirSize = central.reduce((a, b) => a + b.length, 0);
  const eocd = new DataView(new ArrayBuffer(22));
  eocd.setUint32(0, 0x06054b50, true);
  eocd.setUint16(8, members.length, true);
  eocd.setUint16(10, members.length, true);
  eocd.setUint32(12, dirSize, true);
  eocd.setUint32(16, at, true);
  const parts = [...locals, ...central, new Uint8Array(eocd.buffer)];
  const out = new Uint8Array(parts.reduce((a, b) => a + b.length, 0));
  let k = 0;
  for (const p of parts) (out.set(p, k), k += p.length);
  return out;
}
