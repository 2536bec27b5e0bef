// An event-file reader for the tests, written apart from io/tfevents.ts: a bitwise CRC-32C
// (no table), a generic protobuf wire-format decoder, and TensorBoard's field numbers. It
// checks every record's framing and both CRCs, and returns what TensorBoard would show.

/** CRC-32C one bit at a time (Castagnoli polynomial, reflected). */
function crc32cBitwise(bytes: Uint8Array): number {
  let crc = ~0 >>> 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return ~crc >>> 0;
}

function masked(bytes: Uint8Array): number {
  const c = crc32cBitwise(bytes);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

type Field = {
  no: number;
  wire: number;
  int?: bigint;
  bytes?: Uint8Array;
  f64?: number;
  f32?: number;
};

/** Every field of one message, in order (varint, 64-bit, length-delimited, 32-bit). */
export function decodeFields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let i = 0;
  const varint = () => {
    let v = 0n, shift = 0n;
    for (;;) {
      const x = b[i++];
      v |= BigInt(x & 0x7f) << shift;
      if (!(x & 0x80)) return v;
      shift += 7n;
    }
  };
  while (i < b.length) {
    const key = Number(varint()), no = key >> 3, wire = key & 7;
    if (wire === 0) out.push({ no, wire, int: varint() });
    else if (wire === 1) (out.push({ no, wire, f64: dv.getFloat64(i, true) }), i += 8);
    else if (wire === 5) (out.push({ no, wire, f32: dv.getFloat32(i, true) }), i += 4);
    else if (wire === 2) {
      const n = Number(varint());
      out.push({ no, wire, bytes: b.subarray(i, i + n) });
      i += n;
    } else throw new Error(`wire type ${wire} at byte ${i}`);
  }
  return out;
}

export interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: { tag: string; value: number }[];
  /** Tags of values carrying plugin data, with the plugin name and its raw content. */
  plugins: { tag: string; plugin: string; content: Uint8Array }[];
}

export async function readEventFile(path: string): Promise<ReadEvent[]> {
  const b = await Deno.readFile(path);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const events: ReadEvent[] = [];
  for (let at = 0; at < b.length;) {
    if (at + 12 > b.length) throw new Error(`${path}: truncated header at byte ${at}`);
    const len = Number(dv.getBigUint64(at, true));
    if (dv.getUint32(at + 8, true) !== masked(b.subarray(at, at + 8))) {
      throw new Error(`${path}: length CRC mismatch at byte ${at}`);
    }
    const data = b.subarray(at + 12, at + 12 + len);
    if (at + 16 + len > b.length) throw new Error(`${path}: truncated record at byte ${at}`);
    if (dv.getUint32(at + 12 + len, true) !== masked(data)) {
      throw new Error(`${path}: data CRC mismatch at byte ${at}`);
    }
    events.push(decodeEvent(data));
    at += 16 + len;
  }
  return events;
}

const text = (b?: Uint8Array) => new TextDecoder().decode(b);

function decodeEvent(data: Uint8Array): ReadEvent {
  const e: ReadEvent = { wallTime: 0, step: 0, scalars: [], plugins: [] };
  for (const f of decodeFields(data)) {
    if (f.no === 1) e.wallTime = f.f64!;
    else if (f.no === 2) e.step = Number(f.int!);
    else if (f.no === 3) e.fileVersion = text(f.bytes);
    else if (f.no === 5) {
      for (const v of decodeFields(f.bytes!).filter((x) => x.no === 1)) {
        const vf = decodeFields(v.bytes!);
        const tag = text(vf.find((x) => x.no === 1)?.bytes);
        const simple = vf.find((x) => x.no === 2);
        if (simple) e.scalars.push({ tag, value: simple.f32! });
        const meta = vf.find((x) => x.no === 9);
        if (meta) {
          const pd = decodeFields(decodeFields(meta.bytes!).find((x) => x.no === 1)!.bytes!);
          e.plugins.push({
            tag,
            plugin: text(pd.find((x) => x.no === 1)?.bytes),
            content: pd.find((x) => x.no === 2)?.bytes ?? new Uint8Array(),
          });
        }
      }
    }
  }
  return e;
}

/** The scalars of a run's event file as "tag@step=value" lines (what the curves show). */
export async function scalarLines(
  dir: string,
  skip: RegExp = /samples_per_sec/,
): Promise<string[]> {
  const name = [...Deno.readDirSync(dir)].find((e) => e.name.startsWith("events.out.tfevents."));
  if (!name) throw new Error(`${dir}: no event file`);
  return (await readEventFile(`${dir}/${name.name}`)).flatMap((e) =>
    e.scalars.filter((s) => !skip.test(s.tag)).map((s) => `${s.tag}@${e.step}=${s.value}`)
  );
}
