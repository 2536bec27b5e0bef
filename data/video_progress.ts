// The sidecar that makes `poses` resumable: OUT.arrow.progress.jsonl, a header line (the options
// the poses depend on), then one line per finished video (its poses, base64 float32) or per
// video skipped as unreadable. A rerun with the same options skips the videos listed; a torn
// last line (a kill mid-write) is dropped. The Arrow file is written from it at the end, and
// the sidecar removed.
import { type FileHandle, open, rm } from "node:fs/promises";
import { DataError } from "./schema.ts";

/** What the poses depend on: a rerun with other values cannot reuse them. */
export interface ProgressHeader {
  model: string;
  fps: number | null;
  start: number | null;
  end: number | null;
  maxPersons: number;
}

/** One finished video. */
export interface DoneVideo {
  name: string;
  file: string;
  className: string;
  split: string;
  fps: number;
  start: number;
  frames: number;
  persons: number;
  tracks: number;
  width: number;
  height: number;
  /** base64 of persons x frames x 17 x 2 float32 pixels */
  keypoint: string;
  /** base64 of persons x frames x 17 float32 scores */
  score: string;
}

export type ProgressLine = DoneVideo | { skip: string; reason: string };

export const progressPath = (out: string) => `${out}.progress.jsonl`;

export const toBase64 = (a: Float32Array) =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength).toBase64();
export const fromBase64 = (s: string) => new Float32Array(Uint8Array.fromBase64(s).buffer);

/** A file's complete lines (each with its end offset); a torn last line is not yielded. */
async function* completeLines(path: string): AsyncGenerator<{ line: string; end: number }> {
  const file = await Deno.open(path);
  const dec = new TextDecoder();
  let rest = new Uint8Array(0), offset = 0;
  try {
    for await (const chunk of file.readable) {
      const buf = new Uint8Array(rest.length + chunk.length);
      buf.set(rest), buf.set(chunk, rest.length);
      let from = 0;
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, from)) {
        offset += nl + 1 - from;
        yield { line: dec.decode(buf.subarray(from, nl)), end: offset };
        from = nl + 1;
      }
      rest = buf.slice(from);
    }
  } finally {
    // the readable closes the file when it ends; close it here when the reader stopped early
    try {
      file.close();
    } catch { /* already closed */ }
  }
}

/** The parsed lines after the header of a sidecar. */
export async function* progressLines(path: string): AsyncGenerator<ProgressLine> {
  let first = true;
  for await (const { line } of completeLines(path)) {
    if (!first && line.trim()) yield JSON.parse(line);
    first = false;
  }
}

/** The names done in an existing sidecar (its header checked) and the length of its whole lines. */
async function scan(path: string, header: ProgressHeader) {
  const done = new Set<string>();
  let length = 0, first = true;
  for await (const { line, end } of completeLines(path)) {
    const l = JSON.parse(line);
    if (first && JSON.stringify(l) !== JSON.stringify(header)) {
      throw new DataError(
        path,
        null,
        `made with other options (${line}); rerun with those, or remove it`,
      );
    }
    if (!first) done.add("skip" in l ? l.skip : l.name);
    (first = false), (length = end);
  }
  return { done, length, empty: first };
}

export class PosesProgress {
  private constructor(
    readonly path: string,
    /** names finished or skipped */
    readonly done: Set<string>,
    private handle: FileHandle,
  ) {}

  /** Opens OUT's sidecar, continuing it where it exists (a torn last line cut off). */
  static async open(out: string, header: ProgressHeader): Promise<PosesProgress> {
    const path = progressPath(out);
    const have = await Deno.stat(path).then(() => true, () => false);
    const s = have ? await scan(path, header) : null;
    if (!s || s.empty) await Deno.writeTextFile(path, JSON.stringify(header) + "\n");
    else await Deno.truncate(path, s.length);
    return new PosesProgress(path, s?.done ?? new Set(), await open(path, "a"));
  }

  /** Appends a line and flushes it to disk. */
  async add(line: ProgressLine): Promise<void> {
    await this.handle.write(JSON.stringify(line) + "\n");
    await this.handle.sync();
    this.done.add("skip" in line ? line.skip : line.name);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  /** Closes and deletes the sidecar (the dataset is written, or nothing was done). */
  async remove(): Promise<void> {
    await this.close().catch(() => {});
    await rm(this.path, { force: true });
  }
}
