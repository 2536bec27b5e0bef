// What the main process and the pose worker (data/pose/tfjs/main.ts, a project of its own that
// runs MoveNet through TensorFlow.js; data/pose/worker.ts starts it) say to each other. No imports:
// both projects read this file.
//
// Started with `deno run -A --config data/pose/tfjs/deno.json data/pose/tfjs/main.ts
// '<WorkerStart as JSON>'`. On stdin, one request an input: two little-endian u32 (rows, cols),
// then rows x cols x 3 RGB bytes; stdin's end stops the worker. On stdout, messages of two
// little-endian u32 (kind, byte length) and the payload: first a JSON WorkerHello, then for each
// request the model's output as float32, or a JSON WorkerError where it fails (then it exits).

export type TfBackend = "webgpu" | "wasm" | "cpu";
export const TF_BACKENDS: readonly (TfBackend | "auto")[] = ["auto", "webgpu", "wasm", "cpu"];

/** The worker's one argument. */
export interface WorkerStart {
  /** a TF.js graph model's model.json (its weight files beside it) */
  model: string;
  backend: TfBackend | "auto";
}
export interface WorkerHello {
  backend: TfBackend;
}
export interface WorkerError {
  error: string;
}

export const MESSAGE_JSON = 0, MESSAGE_F32 = 1;

/** A stream read in pieces of exactly the sizes asked for. */
export class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #at = 0;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** The next `n` bytes (a new buffer); null where the stream ends before the first of them. */
  async read(n: number): Promise<Uint8Array | null> {
    const out = new Uint8Array(n);
    for (let have = 0; have < n;) {
      if (this.#at === this.#chunk.length) {
        const { value, done } = await this.#reader.read();
        if (done && have === 0) return null;
        if (done) throw new Error(`the stream ended ${n - have} bytes into a ${n}-byte piece`);
        this.#chunk = value, this.#at = 0;
      }
      const k = Math.min(n - have, this.#chunk.length - this.#at);
      out.set(this.#chunk.subarray(this.#at, this.#at + k), have);
      have += k, this.#at += k;
    }
    return out;
  }
}

/** Two u32 and then `payload`, as one buffer. */
function withHeader(a: number, b: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, a, true), view.setUint32(4, b, true);
  out.set(payload, 8);
  return out;
}

/** One input for the model: rows x cols x 3 RGB bytes. */
export function encodeRequest(rgb: Uint8Array, rows: number, cols: number): Uint8Array {
  if (rgb.length !== rows * cols * 3) throw new Error(`${rgb.length} bytes for ${rows} x ${cols}`);
  return withHeader(rows, cols, rgb);
}

export async function readRequest(r: ByteReader) {
  const head = await r.read(8);
  if (!head) return null;
  const view = new DataView(head.buffer);
  const rows = view.getUint32(0, true), cols = view.getUint32(4, true);
  const rgb = await r.read(rows * cols * 3);
  if (!rgb) throw new Error("stdin ended inside a request");
  return { rows, cols, rgb };
}

export function encodeJson(value: WorkerHello | WorkerError): Uint8Array {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return withHeader(MESSAGE_JSON, bytes.length, bytes);
}

export function encodeF32(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return withHeader(MESSAGE_F32, bytes.length, bytes);
}

/** The next message, null where the stream ended first. */
export async function readMessage(
  r: ByteReader,
): Promise<{ json: unknown } | { f32: Float32Array } | null> {
  const head = await r.read(8);
  if (!head) return null;
  const view = new DataView(head.buffer);
  const kind = view.getUint32(0, true), length = view.getUint32(4, true);
  const payload = length ? await r.read(length) : new Uint8Array(0);
  if (!payload) throw new Error("the stream ended inside a message");
  if (kind === MESSAGE_F32) return { f32: new Float32Array(payload.buffer) };
  if (kind === MESSAGE_JSON) return { json: JSON.parse(new TextDecoder().decode(payload)) };
  throw new Error(`unknown message kind ${kind}`);
}
