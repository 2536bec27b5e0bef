// Minimal PNG (8-bit RGB, rows filtered as PNG allows) and .npy (float32) writers for pictures and
// raw volumes.
import { deflateSync } from "node:zlib";

const CRC = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** The Paeth predictor of PNG's filter 4. */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * A row filtered by each of PNG's five filters (none, sub, up, average, Paeth), the one whose
 * bytes, read as signed, sum smallest (the specification's suggested heuristic), with its type.
 */
function filterRow(row: Uint8Array, prev: Uint8Array): Uint8Array {
  let best = new Uint8Array(0), bestSum = Infinity;
  for (let type = 0; type < 5; type++) {
    const out = new Uint8Array(row.length + 1);
    out[0] = type;
    let sum = 0;
    for (let i = 0; i < row.length; i++) {
      const a = i >= 3 ? row[i - 3] : 0, b = prev[i], c = i >= 3 ? prev[i - 3] : 0;
      const predicted = [0, a, b, (a + b) >> 1, paeth(a, b, c)][type];
      const v = (row[i] - predicted) & 255;
      out[i + 1] = v, (sum += v < 128 ? v : 256 - v);
    }
    if (sum < bestSum) (best = out), (bestSum = sum);
  }
  return best;
}

/** Encodes an RGB image (width x height x 3 bytes, row-major) as PNG, each row filtered. */
export function encodePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const raw = new Uint8Array((width * 3 + 1) * height), stride = width * 3;
  let prev: Uint8Array = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = rgb.subarray(y * stride, (y + 1) * stride);
    raw.set(filterRow(row, prev), y * (stride + 1));
    prev = row;
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(deflateSync(raw, { level: 9 }))),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Encodes a float32 array of a shape as a NumPy .npy (v1.0) file. */
export function encodeNpy(data: Float32Array, shape: number[]): Uint8Array {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}${
    shape.length === 1 ? "," : ""
  }), }`;
  const pre = 10;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const header = dict + " ".repeat(total - pre - dict.length - 1) + "\n";
  const out = new Uint8Array(total + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), pre);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}
