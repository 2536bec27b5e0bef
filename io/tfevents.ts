// TensorBoard event files, written without TensorFlow: TFRecord framing (length, masked CRC-32C
// of the length, payload, masked CRC-32C of the payload) around `Event` protobufs, each a
// scalar `Summary` or the hparams plugin's session records. Just the fields TensorBoard reads:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5 }
//   Summary { repeated Value value = 1 }
//   Value   { string tag = 1; float simple_value = 2; SummaryMetadata metadata = 9 }
//   SummaryMetadata { PluginData plugin_data = 1 }   PluginData { string plugin_name = 1; bytes content = 2 }
//   HParamsPluginData { int32 version = 1; SessionStartInfo session_start_info = 3;
//                       SessionEndInfo session_end_info = 4 }
//   SessionStartInfo { map<string, google.protobuf.Value> hparams = 1; string group_name = 4;
//                      double start_time_secs = 5 }
//   SessionEndInfo { Status status = 1; double end_time_secs = 2 }
//   google.protobuf.Value { double number_value = 2; string string_value = 3; bool bool_value = 4 }

// ---- CRC-32C (Castagnoli), table-driven, and TFRecord's mask ----------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15, add a constant (so CRCs of CRCs do not collide). */
export function maskedCrc(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: u64 length, masked CRC of it, the payload, masked CRC of the payload. */
export function tfRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + payload.length + 4);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(payload.length), true);
  dv.setUint32(8, maskedCrc(out.subarray(0, 8)), true);
  out.set(payload, 12);
  dv.setUint32(12 + payload.length, maskedCrc(payload), true);
  return out;
}

// ---- a minimal protobuf writer -------------------------------------------------------------

class Proto {
  #parts: number[] = [];

  #varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.#parts.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.#parts.push(Number(x));
  }
  #key(field: number, wire: number): void {
    this.#varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    this.#key(field, 0);
    this.#varint(Math.trunc(v));
    return this;
  }
  bool(field: number, v: boolean): this {
    return this.int(field, v ? 1 : 0);
  }
  /** A fixed-width little-endian value: 64-bit (wire type 1) or 32-bit (wire type 5). */
  #fixed(field: number, wire: 1 | 5, put: (dv: DataView) => void): this {
    this.#key(field, wire);
    const b = new Uint8Array(wire === 1 ? 8 : 4);
    put(new DataView(b.buffer));
    this.#parts.push(...b);
    return this;
  }
  double(field: number, v: number): this {
    return this.#fixed(field, 1, (dv) => dv.setFloat64(0, v, true));
  }
  float(field: number, v: number): this {
    return this.#fixed(field, 5, (dv) => dv.setFloat32(0, v, true));
  }
  bytes(field: number, v: Uint8Array): this {
    this.#key(field, 2);
    this.#varint(v.length);
    for (const x of v) this.#parts.push(x);
    return this;
  }
  string(field: number, v: string): this {
    return this.bytes(field, new TextEncoder().encode(v));
  }
  message(field: number, m: Proto): this {
    return this.bytes(field, m.finish());
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

// ---- events --------------------------------------------------------------------------------

export type HParam = number | string | boolean;

function event(wallTime: number, step: number): Proto {
  return new Proto().double(1, wallTime).int(2, step);
}

/** The first record of every event file. */
export function fileVersionEvent(wallTime: number): Uint8Array {
  return tfRecord(event(wallTime, 0).string(3, "brain.Event:2").finish());
}

/** Scalars at one step: one Summary with a simple_value per tag. */
export function scalarsEvent(
  values: Record<string, number>,
  step: number,
  wallTime: number,
): Uint8Array {
  const summary = new Proto();
  for (const [tag, v] of Object.entries(values)) {
    if (Number.isFinite(v)) summary.message(1, new Proto().string(1, tag).float(2, v));
  }
  return tfRecord(event(wallTime, step).message(5, summary).finish());
}

/** The run's hyper-parameters: a session start record of the hparams plugin. */
export function sessionStartEvent(
  hparams: Record<string, HParam>,
  group: string,
  wallTime: number,
): Uint8Array {
  const info = new Proto();
  for (const [k, v] of Object.entries(hparams)) {
    const value = new Proto();
    if (typeof v === "number") value.double(2, v);
    else if (typeof v === "boolean") value.bool(4, v);
    else value.string(3, v);
    info.message(1, new Proto().string(1, k).message(2, value));
  }
  info.string(4, group).double(5, wallTime);
  return sessionRecord("_hparams_/session_start_info", 3, info, wallTime);
}

/** The end of the session: TensorBoard's Status, 1 success or 2 failure. */
export function sessionEndEvent(status: 1 | 2, wallTime: number): Uint8Array {
  const info = new Proto().int(1, status).double(2, wallTime);
  return sessionRecord("_hparams_/session_end_info", 4, info, wallTime);
}

function sessionRecord(tag: string, field: 3 | 4, info: Proto, wallTime: number): Uint8Array {
  const content = new Proto().int(1, 0).message(field, info);
  const plugin = new Proto().string(1, "hparams").bytes(2, content.finish());
  const value = new Proto().string(1, tag).message(9, new Proto().message(1, plugin));
  return tfRecord(event(wallTime, 0).message(5, new Proto().message(1, value)).finish());
}
