// The Arrow schema for skeleton sequences (one row a sample), its writer and its reader.
//
// Columns: name, label, subject, camera, setup, replication, frames, persons, layout,
// keypoint (List<Float32|Float16>: persons x frames x joints x channels, row-major),
// keypoint_score (List<Float32>, persons x frames x joints, nullable), keypoint2d
// (List<Float32>, persons x frames x joints x 2 image pixels, nullable: kept beside 3D
// joints), img_h / img_w (Int32, nullable), splits (List<Utf8>).
// Schema metadata: heatformer.schema = "skeleton/1", layout, channels, joints, dataset,
// classes (JSON), keypoint_dtype, batch_size, and index (JSON: names, labels, splits), so
// split filtering and shuffling never read keypoints. Record batches hold batch_size rows:
// sample i lives in batch floor(i / batch_size), row i % batch_size.
import * as arrow from "apache-arrow";
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import { writeError } from "../io/atomic.ts";
import { located } from "../io/errors.ts";
import { batchChecksum, CHECKSUM_KEY, CHECKSUMS } from "./checksum.ts";
import { toF16Array } from "../runtime/dtype.ts";
import { type JointLayout, layoutByName, type LayoutName, registerLayout } from "./layouts.ts";
import { layoutJson, parseLayout } from "./layout_file.ts";
import {
  checkScoreOrder,
  type LayoutMap,
  layoutMap,
  mapRecord,
  type ScoreOrder,
} from "./layout_map.ts";

export const SCHEMA_VERSION = "skeleton/1";

/** One skeleton sequence on the host. */
export interface SkeletonRecord {
  name: string;
  label: number;
  subject: number;
  camera: number;
  setup: number;
  replication: number;
  frames: number;
  persons: number;
  /** persons x frames x joints x channels */
  keypoint: Float32Array;
  /** persons x frames x joints, or null when the source has none (confidence 1). */
  score: Float32Array | null;
  /** persons x frames x joints x 2 image coordinates beside 3D keypoints, or null. */
  keypoint2d: Float32Array | null;
  imgShape: [number, number] | null;
  splits: string[];
}

export interface DatasetMeta {
  dataset: string;
  layout: LayoutName;
  /** Channels of `keypoint`: 2 (x, y pixels) or 3 (x, y, z metres). */
  channels: 2 | 3;
  classes: string[];
  keypointDtype: "f32" | "f16";
  batchSize: number;
  /** Class a horizontal flip turns each class into (e.g. wave left <-> wave right); absent:
   * every class is its own mirror image (NTU, NW-UCLA). */
  flipLabels?: number[];
  /** More schema metadata, stored as `extra.KEY` (e.g. `extra.videos`: each sample's source file
   * and frame times). Read when the file is finished: a producer may fill it as records stream. */
  extra?: Record<string, string>;
}

export interface DatasetIndex {
  names: string[];
  labels: number[];
  /** split name -> sample indices */
  splits: Record<string, number[]>;
}

export class DataError extends Error {
  constructor(file: string, record: string | null, problem: string) {
    super(`${file}${record ? ` [${record}]` : ""}: ${problem}`);
    this.name = "DataError";
    located(this, file, record ?? undefined);
  }
}

const f32List = () => new arrow.List(new arrow.Field("item", new arrow.Float32(), false));

function schemaFor(meta: DatasetMeta, index?: DatasetIndex): arrow.Schema {
  const kpType = new arrow.List(
    new arrow.Field(
      "item",
      meta.keypointDtype === "f16" ? new arrow.Float16() : new arrow.Float32(),
      false,
    ),
  );
  const fields = [
    new arrow.Field("name", new arrow.Utf8(), false),
    new arrow.Field("label", new arrow.Int32(), false),
    new arrow.Field("subject", new arrow.Int32(), false),
    new arrow.Field("camera", new arrow.Int32(), false),
    new arrow.Field("setup", new arrow.Int32(), false),
    new arrow.Field("replication", new arrow.Int32(), false),
    new arrow.Field("frames", new arrow.Int32(), false),
    new arrow.Field("persons", new arrow.Int32(), false),
    new arrow.Field("layout", new arrow.Utf8(), false),
    new arrow.Field("keypoint", kpType, false),
    new arrow.Field("keypoint_score", f32List(), true),
    new arrow.Field("keypoint2d", f32List(), true),
    new arrow.Field("img_h", new arrow.Int32(), true),
    new arrow.Field("img_w", new arrow.Int32(), true),
    new arrow.Field(
      "splits",
      new arrow.List(new arrow.Field("item", new arrow.Utf8(), false)),
      false,
    ),
  ];
  const md = new Map<string, string>([
    ["heatformer.schema", SCHEMA_VERSION],
    ["dataset", meta.dataset],
    ["layout", meta.layout],
    // the whole layout, so that a converted file is self-describing (data/layout_file.ts)
    ["layout_def", JSON.stringify(layoutJson(layoutByName(meta.layout)))],
    ["joints", String(layoutByName(meta.layout).joints.length)],
    ["channels", String(meta.channels)],
    ["classes", JSON.stringify(meta.classes)],
    ["keypoint_dtype", meta.keypointDtype],
    ["batch_size", String(meta.batchSize)],
  ]);
  if (meta.flipLabels) md.set("flip_labels", JSON.stringify(meta.flipLabels));
  for (const [k, v] of Object.entries(meta.extra ?? {})) md.set(`extra.${k}`, v);
  if (index) md.set("index", JSON.stringify(index));
  // the final file's batches each carry a CRC32 (data/checksum.ts); older files have none
  if (index) md.set(CHECKSUMS, "crc32");
  return new arrow.Schema(fields, md);
}

/** Checks a record's shapes and values before it is stored. */
export function validateRecord(r: SkeletonRecord, meta: DatasetMeta, file: string): void {
  const v = layoutByName(meta.layout).joints.length;
  const n = r.persons * r.frames * v;
  const bad = (p: string) => new DataError(file, r.name, p);
  if (r.frames <= 0) throw bad("empty sequence (0 frames)");
  if (r.persons <= 0) throw bad("no person in any frame");
  if (r.keypoint.length !== n * meta.channels) {
    throw bad(
      `keypoint has ${r.keypoint.length} values, expected ${r.persons}x${r.frames}x${v}x${meta.channels}`,
    );
  }
  if (r.score && r.score.length !== n) {
    throw bad(`keypoint_score has ${r.score.length} values, expected ${n}`);
  }
  if (r.keypoint2d && r.keypoint2d.length !== n * 2) {
    throw bad(`keypoint2d has ${r.keypoint2d.length} values, expected ${n * 2}`);
  }
  for (
    const [what, a] of [["keypoint", r.keypoint], ["keypoint_score", r.score], [
      "keypoint2d",
      r.keypoint2d,
    ]] as const
  ) {
    if (!a) continue;
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i])) {
        throw bad(`${what} has a non-finite value (${a[i]}) at flat index ${i}`);
      }
    }
  }
  if (!Number.isInteger(r.label) || r.label < 0 || r.label >= meta.classes.length) {
    throw bad(`label ${r.label} outside 0..${meta.classes.length - 1}`);
  }
}

/**
 * A List<Float32 | Float16> column built straight from typed arrays (no per-value boxing).
 * Float16 bits come from our own encoder: apache-arrow's rounds values just below a power of
 * two to half of it (0.49999 -> 0.25).
 */
function floatList(type: arrow.List, rows: (Float32Array | null)[]): arrow.Vector {
  const offsets = new Int32Array(rows.length + 1);
  rows.forEach((r, i) => (offsets[i + 1] = offsets[i] + (r?.length ?? 0)));
  const total = offsets[rows.length];
  const f16 = type.children[0].type instanceof arrow.Float16;
  const values = f16 ? new Uint16Array(total) : new Float32Array(total);
  rows.forEach((r, i) => r && values.set(f16 ? toF16Array(r) : r, offsets[i]));
  const nulls = rows.some((r) => r === null);
  const bitmap = new Uint8Array(Math.ceil(rows.length / 8));
  rows.forEach((r, i) => r && (bitmap[i >> 3] |= 1 << (i & 7)));
  const child = arrow.makeData({
    type: type.children[0].type,
    length: total,
    data: values as never,
  });
  return arrow.makeVector(arrow.makeData({
    type,
    length: rows.length,
    nullCount: rows.filter((r) => r === null).length,
    nullBitmap: nulls ? bitmap : undefined,
    valueOffsets: offsets,
    child,
  }));
}

function batchOf(
  rows: SkeletonRecord[],
  schema: arrow.Schema,
  meta: DatasetMeta,
): arrow.RecordBatch {
  const col = <T extends arrow.DataType>(type: T, values: unknown[]) =>
    arrow.vectorFromArray(values as never, type);
  const int = (f: (r: SkeletonRecord) => number | null) => col(new arrow.Int32(), rows.map(f));
  const kpType = schema.fields[9].type;
  const children: Record<string, arrow.Vector> = {
    name: col(new arrow.Utf8(), rows.map((r) => r.name)),
    label: int((r) => r.label),
    subject: int((r) => r.subject),
    camera: int((r) => r.camera),
    setup: int((r) => r.setup),
    replication: int((r) => r.replication),
    frames: int((r) => r.frames),
    persons: int((r) => r.persons),
    layout: col(new arrow.Utf8(), rows.map(() => meta.layout)),
    keypoint: floatList(kpType as arrow.List, rows.map((r) => r.keypoint)),
    keypoint_score: floatList(f32List(), rows.map((r) => r.score)),
    keypoint2d: floatList(f32List(), rows.map((r) => r.keypoint2d)),
    img_h: int((r) => r.imgShape?.[0] ?? null),
    img_w: int((r) => r.imgShape?.[1] ?? null),
    splits: col(
      new arrow.List(new arrow.Field("item", new arrow.Utf8(), false)),
      rows.map((r) => r.splits),
    ),
  };
  const data = arrow.makeData({
    type: new arrow.Struct(schema.fields),
    length: rows.length,
    nullCount: 0,
    children: schema.fields.map((f) => children[f.name].data[0]),
  });
  return new arrow.RecordBatch(schema, data);
}

export interface WriteReport {
  written: number;
  skipped: { name: string; reason: string }[];
  /** Things the input got wrong that did not stop the conversion. */
  warnings?: string[];
  /** Sequences written per split. */
  splits?: Record<string, number>;
}

type Item = SkeletonRecord | { skip: string; reason: string };

/** How a write may be stopped: an aborted signal (Ctrl-C in `convert`) ends it cleanly. */
export interface WriteOptions {
  signal?: AbortSignal;
}

/**
 * Writes records (validated; a record whose producer throws a DataError is counted as
 * skipped) to an Arrow IPC file, atomically: a temporary stream first, then the file with
 * the index in its schema metadata, renamed into place. On any failure (a bad record, a full
 * disk, an abort) neither temporary file remains and the output is untouched.
 */
export async function writeSkeletonArrow(
  path: string,
  meta: DatasetMeta,
  records: AsyncIterable<Item> | Iterable<Item>,
  source = path,
  o: WriteOptions = {},
): Promise<WriteReport> {
  const tmp = { stream: `${path}.stream.tmp`, file: `${path}.tmp` };
  try {
    const index = await streamPhase(path, meta, records, source, tmp.stream, o);
    await filePhase(path, meta, index, tmp.stream, tmp.file, o);
    await rename(tmp.file, path);
    await rm(tmp.stream, { force: true });
    const splits = Object.fromEntries(
      Object.entries(index.splits).map(([k, v]) => [k, v.length]),
    );
    return { written: index.names.length, skipped: index.skipped, splits };
  } catch (e) {
    // nothing of a failed conversion remains: neither temporary file (the output is only
    // ever renamed into place at the very end)
    await rm(tmp.stream, { force: true });
    await rm(tmp.file, { force: true });
    throw e;
  }
}

/** A write that failed (disk full, no permission) as an error naming the output. */
function writeFailure(e: unknown, path: string): Error {
  return e instanceof DataError ? e : writeError(path, e);
}

/**
 * Pipes an Arrow writer's bytes into a file. A failed write is kept, not thrown at nobody:
 * `check()` raises it at the producer's next batch, so a full disk stops the conversion at
 * once instead of buffering the rest of it in memory.
 */
function pipeTo(w: AsyncIterable<Uint8Array>, fh: FileHandle, path: string) {
  let failed: Error | null = null;
  const done = (async () => {
    for await (const chunk of w) await fh.write(chunk);
  })().catch((e) => (failed ??= writeFailure(e, path)));
  const check = () => {
    if (failed) throw failed;
  };
  return {
    check,
    /** Runs a call on the Arrow writer; once a write failed, its error is the one raised (the
     * writer's own complaint, "AsyncQueue is closed", would hide it). */
    guard: (fn: () => void) => {
      check();
      try {
        fn();
      } catch (e) {
        check();
        throw e;
      }
    },
    finish: async () => {
      await done;
      check();
    },
  };
}

let lastYield = 0;

/**
 * Lets signal handlers and the file writes run between batches (at most every 25 ms: a
 * producer that never waits on I/O, an in-memory .npz, would otherwise starve them), then
 * raises an abort or a failed write.
 */
async function between(o: WriteOptions, pipe: { check(): void }): Promise<void> {
  if (performance.now() - lastYield > 25) {
    await new Promise((r) => setTimeout(r, 0));
    lastYield = performance.now();
  }
  o.signal?.throwIfAborted();
  pipe.check();
}

/**
 * Phase 1: records streamed to an Arrow stream file (memory stays one record batch); returns
 * the index (names, labels, splits) and the skipped samples. Bad records are reported against
 * `source` (the importer's input).
 */
async function streamPhase(
  path: string,
  meta: DatasetMeta,
  records: AsyncIterable<Item> | Iterable<Item>,
  source: string,
  tmpStream: string,
  o: WriteOptions,
): Promise<DatasetIndex & { skipped: { name: string; reason: string }[] }> {
  const index: DatasetIndex = { names: [], labels: [], splits: {} };
  const skipped: { name: string; reason: string }[] = [];
  const schema0 = schemaFor(meta);
  const streamFile = await open(tmpStream, "w").catch((e) => {
    throw writeFailure(e, path);
  });
  try {
    const w = new arrow.RecordBatchStreamWriter();
    const pipe = pipeTo(w, streamFile, path);
    let pending: SkeletonRecord[] = [];
    for await (const r of records as AsyncIterable<Item>) {
      if ("skip" in r) {
        skipped.push({ name: r.skip, reason: r.reason });
        continue;
      }
      validateRecord(r, meta, source);
      const i = index.names.length;
      index.names.push(r.name);
      index.labels.push(r.label);
      for (const s of r.splits) (index.splits[s] ??= []).push(i);
      pending.push(r);
      if (pending.length === meta.batchSize) {
        const batch = batchOf(pending, schema0, meta);
        pipe.guard(() => w.write(batch));
        pending = [];
        await between(o, pipe);
      }
    }
    o.signal?.throwIfAborted();
    if (!index.names.length) {
      // nothing written is a failed conversion, not an empty file to train on
      const first = skipped.slice(0, 3).map((s) => `${s.name}: ${s.reason}`).join("; ");
      throw new DataError(
        source,
        null,
        `no sample to write (${skipped.length} skipped${first ? `: ${first}` : ""})`,
      );
    }
    if (pending.length) {
      const batch = batchOf(pending, schema0, meta);
      pipe.guard(() => w.write(batch));
    }
    pipe.guard(() => w.finish());
    await pipe.finish();
  } finally {
    await streamFile.close();
  }
  return { ...index, skipped };
}

/** Phase 2: the stream copied into the final IPC file, the index in its schema metadata and a
 * CRC32 in each batch's metadata. */
async function filePhase(
  path: string,
  meta: DatasetMeta,
  index: DatasetIndex,
  tmpStream: string,
  tmpFile: string,
  o: WriteOptions,
): Promise<void> {
  const schema = schemaFor(meta, {
    names: index.names,
    labels: index.labels,
    splits: index.splits,
  });
  const out = await open(tmpFile, "w").catch((e) => {
    throw writeFailure(e, path);
  });
  try {
    const fw = new arrow.RecordBatchFileWriter();
    const pipe = pipeTo(fw, out, path);
    fw.reset(undefined, schema);
    const src = await open(tmpStream, "r");
    try {
      const reader = await arrow.RecordBatchReader.from(
        src as unknown as AsyncIterable<Uint8Array>,
      );
      for await (const b of reader as AsyncIterable<arrow.RecordBatch>) {
        const sum = new Map([[CHECKSUM_KEY, batchChecksum(b)]]);
        pipe.guard(() => fw.write(new arrow.RecordBatch(schema, b.data, sum)));
        await between(o, pipe);
      }
    } finally {
      await src.close();
    }
    pipe.guard(() => fw.finish());
    await pipe.finish();
  } finally {
    await out.close();
  }
  o.signal?.throwIfAborted();
}

const REQUIRED = ["name", "label", "frames", "persons", "keypoint", "splits"];

/**
 * A file's layout: its embedded definition (registered under its name), else the built-in
 * of that name (files written before layouts were embedded).
 */
function fileLayout(name: string, def: string | undefined, path: string): JointLayout {
  if (!def) return layoutByName(name);
  return registerLayout(parseLayout(JSON.parse(def), path), path);
}

/** The `extra.KEY` entries of a schema's metadata, or undefined if none. */
function extraOf(md: Map<string, string>): Record<string, string> | undefined {
  const extra = [...md].filter(([k]) => k.startsWith("extra."));
  return extra.length ? Object.fromEntries(extra.map(([k, v]) => [k.slice(6), v])) : undefined;
}

/** An Arrow skeleton file opened for random access by record batch. */
export class SkeletonFile {
  private constructor(
    readonly path: string,
    readonly meta: DatasetMeta,
    readonly index: DatasetIndex,
    private readonly reader: arrow.AsyncRecordBatchFileReader,
    private readonly handle: FileHandle,
    /** The file's own layout where records are converted to meta.layout as they are read. */
    private readonly layoutMap: LayoutMap | null,
    private readonly scoreOrder: ScoreOrder,
  ) {}

  /**
   * Opens a dataset; with `layout`, its records are read converted to that joint layout
   * (data/layout_map.ts: COCO-17 as Human3.6M-17 for MotionBERT's checkpoints, say).
   */
  static async open(
    path: string,
    opts: { layout?: string; scores?: ScoreOrder } = {},
  ): Promise<SkeletonFile> {
    let fh;
    try {
      fh = await open(path, "r");
    } catch (e) {
      throw new DataError(path, null, `cannot open (${(e as Error).message})`);
    }
    let reader: arrow.AsyncRecordBatchFileReader;
    try {
      const r = await arrow.RecordBatchReader.from(fh as unknown as AsyncIterable<Uint8Array>);
      await r.open();
      if (!r.isFile()) throw new Error("an Arrow stream, not an Arrow IPC file");
      reader = r as unknown as arrow.AsyncRecordBatchFileReader;
    } catch (e) {
      await fh.close();
      throw new DataError(path, null, `not a readable Arrow IPC file (${(e as Error).message})`);
    }
    const md = reader.schema.metadata;
    const fail = async (p: string) => {
      await fh.close();
      throw new DataError(path, null, p);
    };
    if (md.get("heatformer.schema") !== SCHEMA_VERSION) {
      await fail(
        `wrong schema: metadata heatformer.schema is ${
          JSON.stringify(md.get("heatformer.schema") ?? null)
        }, expected "${SCHEMA_VERSION}" (convert the data with \`heatformer convert\`)`,
      );
    }
    for (const f of REQUIRED) {
      if (!reader.schema.fields.some((x) => x.name === f)) {
        await fail(`wrong schema: column "${f}" is missing`);
      }
    }
    let meta: DatasetMeta, index: DatasetIndex;
    try {
      meta = {
        dataset: md.get("dataset") ?? "unknown",
        layout: fileLayout(md.get("layout") ?? "", md.get("layout_def"), path).name,
        channels: Number(md.get("channels")) as 2 | 3,
        classes: JSON.parse(md.get("classes") ?? "[]"),
        keypointDtype: md.get("keypoint_dtype") === "f16" ? "f16" : "f32",
        batchSize: Number(md.get("batch_size")),
        flipLabels: md.has("flip_labels") ? JSON.parse(md.get("flip_labels")!) : undefined,
        extra: extraOf(md),
      };
      index = JSON.parse(md.get("index") ?? "null");
      if (!index || !Array.isArray(index.names)) throw new Error("no index in the metadata");
      if (!(meta.channels === 2 || meta.channels === 3) || !(meta.batchSize > 0)) {
        throw new Error("bad channels or batch_size");
      }
    } catch (e) {
      await fh.close();
      throw new DataError(path, null, `wrong schema metadata (${(e as Error).message})`);
    }
    let map: LayoutMap | null;
    try {
      map = opts.layout ? layoutMap(meta.layout, opts.layout) : null;
      checkScoreOrder(map, opts.scores ?? "mapped");
    } catch (e) {
      await fh.close();
      throw new DataError(path, null, (e as Error).message);
    }
    if (map) meta.layout = map.to.name;
    return new SkeletonFile(path, meta, index, reader, fh, map, opts.scores ?? "mapped");
  }

  get size(): number {
    return this.index.names.length;
  }
  get numBatches(): number {
    return this.reader.numRecordBatches;
  }

  /** Sample indices of a split (throws naming the known splits). */
  split(name: string): number[] {
    const s = this.index.splits[name];
    if (!s) {
      throw new DataError(
        this.path,
        null,
        `no split "${name}" (this file has: ${
          Object.keys(this.index.splits).join(", ") || "none"
        })`,
      );
    }
    return s;
  }

  #lock: Promise<unknown> = Promise.resolve();

  /** Reads one record batch and decodes its rows (reads are serialised: the reader seeks one handle). */
  readBatch(b: number): Promise<SkeletonRecord[]> {
    const next = this.#lock.then(() => this.#readBatch(b));
    this.#lock = next.catch(() => {});
    return next;
  }

  async #readBatch(b: number): Promise<SkeletonRecord[]> {
    try {
      return await this.#decodeBatch(b);
    } catch (e) {
      if (e instanceof DataError) throw e;
      // apache-arrow's own errors (a damaged batch header or body) name neither file nor batch
      throw new DataError(
        this.path,
        `record batch ${b}`,
        `damaged or unreadable (${(e as Error).message})`,
      );
    }
  }

  /**
   * Checks a record batch's framing before apache-arrow decodes it: a damaged length there
   * would make it allocate gigabytes (a fatal out-of-memory, not an exception). The block
   * must lie inside the file, and its message's buffers inside its body.
   */
  async #checkBlock(b: number): Promise<void> {
    type Block = { offset: number | bigint; metaDataLength: number; bodyLength: number | bigint };
    const footer = (this.reader as unknown as {
      footer: { getRecordBatch(i: number): Block | null } | null;
    }).footer;
    const blk = footer?.getRecordBatch(b);
    const size = (await this.handle.stat()).size;
    const damaged = (p: string) => new DataError(this.path, `record batch ${b}`, `damaged: ${p}`);
    if (!blk) throw damaged("not in the file's footer");
    const [offset, metaLen, bodyLen] = [blk.offset, blk.metaDataLength, blk.bodyLength].map(Number);
    if (!(offset >= 0 && metaLen >= 8 && bodyLen >= 0 && offset + metaLen + bodyLen <= size)) {
      throw damaged(`its block (${offset} + ${metaLen} + ${bodyLen}) runs past the ${size} bytes`);
    }
    const head = new Uint8Array(metaLen);
    await this.handle.read(head, 0, metaLen, offset);
    const len = new DataView(head.buffer).getInt32(4, true);
    if (!(len > 0 && len <= metaLen - 8)) throw damaged(`message length ${len}`);
    let message: arrow.Message;
    try {
      message = arrow.Message.decode(head.subarray(8, 8 + len));
    } catch (e) {
      throw damaged(`unreadable message (${(e as Error).message})`);
    }
    if (!message.isRecordBatch() || Number(message.bodyLength) !== bodyLen) {
      throw damaged("its message is not a record batch of the block's size");
    }
    const header = message.header() as unknown as {
      length: number;
      nodes: { length: number }[];
      buffers: { offset: number; length: number }[];
    };
    const rows = Math.min(this.meta.batchSize, this.size - b * this.meta.batchSize);
    if (Number(header.length) !== rows) throw damaged(`${header.length} rows, expected ${rows}`);
    for (const r of header.buffers) {
      if (!(Number(r.offset) >= 0 && Number(r.offset) + Number(r.length) <= bodyLen)) {
        throw damaged("a buffer runs past its body");
      }
    }
    if (
      header.nodes.some((n) => !(Number(n.length) >= 0 && Number(n.length) <= 8 * bodyLen + 64))
    ) {
      throw damaged("a column claims more values than its body holds");
    }
  }

  /** A batch's CRC32 against the one written with it (files with checksums: every batch). */
  #verify(batch: arrow.RecordBatch, b: number): void {
    if (this.reader.schema.metadata.get(CHECKSUMS) !== "crc32") return; // written before them
    const want = batch.metadata.get(CHECKSUM_KEY), got = batchChecksum(batch);
    if (want !== got) {
      throw new DataError(
        this.path,
        `record batch ${b}`,
        `damaged: checksum ${got}, written as ${want ?? "none"} (the file changed since it was ` +
          `written; convert it again)`,
      );
    }
  }

  async #decodeBatch(b: number): Promise<SkeletonRecord[]> {
    await this.#checkBlock(b);
    const batch = await this.reader.readRecordBatch(b);
    if (!batch) throw new DataError(this.path, `batch ${b}`, "record batch out of range");
    this.#verify(batch, b);
    const get = (n: string) => batch.getChild(n);
    const map = this.layoutMap, C = this.meta.channels;
    const V = (map?.from ?? layoutByName(this.meta.layout)).joints.length;
    const out: SkeletonRecord[] = [];
    for (let i = 0; i < batch.numRows; i++) {
      const name = String(get("name")!.get(i));
      const frames = Number(get("frames")!.get(i)), persons = Number(get("persons")!.get(i));
      // List rows are sliced by their offsets; damaged offsets would ask for a huge copy, so
      // every length is checked against the row's own shape before anything is copied.
      const bad = (p: string) =>
        new DataError(this.path, `record batch ${b} row ${i}`, `damaged: ${p}`);
      const n = persons * frames * V;
      if (!(Number.isInteger(n) && frames > 0 && persons > 0 && n < 2 ** 28)) {
        throw bad(`${persons} persons x ${frames} frames`);
      }
      const kpv = get("keypoint")!.get(i) as arrow.Vector;
      if (kpv?.length !== n * C) throw bad(`keypoint has ${kpv?.length} values, expected ${n * C}`);
      // Float16 rows: toArray() gives raw half bits and ignores the row's offset, so decode by
      // iterating (which converts); Float32 rows are copied as a block.
      const kp = this.meta.keypointDtype === "f16"
        ? Float32Array.from(kpv as Iterable<number>)
        : new Float32Array(kpv.toArray() as Float32Array);
      const sc = get("keypoint_score")?.get(i) as arrow.Vector | null;
      const k2 = get("keypoint2d")?.get(i) as arrow.Vector | null;
      if (sc && sc.length !== n) throw bad(`keypoint_score has ${sc.length} values, expected ${n}`);
      if (k2 && k2.length !== n * 2) throw bad(`keypoint2d has ${k2.length} values`);
      const h = get("img_h")?.get(i) as number | null, w = get("img_w")?.get(i) as number | null;
      const splits = get("splits")!.get(i) as arrow.Vector;
      if (!(splits?.length >= 0 && splits.length < 256)) throw bad("its split list");
      out.push({
        name,
        label: Number(get("label")!.get(i)),
        subject: Number(get("subject")?.get(i) ?? 0),
        camera: Number(get("camera")?.get(i) ?? 0),
        setup: Number(get("setup")?.get(i) ?? 0),
        replication: Number(get("replication")?.get(i) ?? 0),
        frames,
        persons,
        keypoint: kp,
        score: sc ? new Float32Array(sc.toArray() as Float32Array) : null,
        keypoint2d: k2 ? new Float32Array(k2.toArray() as Float32Array) : null,
        imgShape: h != null && w != null ? [h, w] : null,
        splits: [...splits.toArray()].map(String),
      });
    }
    return map ? out.map((r) => mapRecord(r, C, map, this.scoreOrder)) : out;
  }

  /** Reads one sample by index (its whole record batch is read). */
  async read(i: number): Promise<SkeletonRecord> {
    if (i < 0 || i >= this.size) {
      throw new DataError(this.path, `sample ${i}`, `index out of range 0..${this.size - 1}`);
    }
    const rows = await this.readBatch(Math.floor(i / this.meta.batchSize));
    return rows[i % this.meta.batchSize];
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
