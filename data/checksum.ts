// A CRC32 per record batch of a skeleton file, so that a flipped byte in its values is an
// error naming the file and the batch rather than a NaN loss hours later. It covers what the
// batch means, column by column: validity, offsets relative to the first, and the values in
// range (padding and buffer layout are not hashed, so any writer of the same rows agrees).
import type * as arrow from "apache-arrow";
import { crc32 } from "node:zlib";

/** The batch metadata key of a batch's checksum, and the schema key saying every batch has one. */
export const CHECKSUM_KEY = "heatformer.crc32";
export const CHECKSUMS = "batch_checksums";

const bytes = (a: ArrayLike<number> & ArrayBufferView) =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Folds one column's rows into the running CRC (recursing into list and struct children). */
function fold(d: arrow.Data, crc: number): number {
  if (d.nullCount > 0) {
    const valid = new Uint8Array(d.length);
    for (let i = 0; i < d.length; i++) valid[i] = d.getValid(i) ? 1 : 0;
    crc = crc32(valid, crc);
  }
  if (d.valueOffsets) {
    const off = d.valueOffsets.subarray(d.offset, d.offset + d.length + 1) as Int32Array;
    const first = off[0] ?? 0, last = off[d.length] ?? 0;
    crc = crc32(bytes(Int32Array.from(off, (o) => o - first)), crc);
    if (d.children.length) return fold(d.children[0].slice(first, last - first), crc);
    return crc32(bytes(d.values.subarray(first, last)), crc);
  }
  if (d.children.length) {
    for (const c of d.children) crc = fold(c.slice(d.offset, d.length), crc);
    return crc;
  }
  return crc32(bytes(d.values.subarray(d.offset, d.offset + d.length)), crc);
}

/** The batch's CRC32 as 8 hex digits. */
export function batchChecksum(b: arrow.RecordBatch): string {
  let crc = 0;
  for (const c of b.data.children) crc = fold(c, crc);
  return (crc >>> 0).toString(16).padStart(8, "0");
}
