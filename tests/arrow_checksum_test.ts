// A skeleton file's record batches carry a CRC32 (data/checksum.ts): a byte flipped inside
// the values is an error naming the file and the batch, in the reader, `inspect` and
// `render`; files written before checksums still read.
import * as arrow from "apache-arrow";
import { synthMeta, synthRecords } from "../data/importers/synth.ts";
import { CHECKSUM_KEY, CHECKSUMS } from "../data/checksum.ts";
import {
  DataError,
  SkeletonFile,
  type SkeletonRecord,
  writeSkeletonArrow,
} from "../data/schema.ts";
import { locationOf } from "../io/errors.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { runCli } from "./cli_run.ts";

const SENTINEL = 1234.5678;

/** A small file of 8-row batches whose sample 9 (batch 1) holds SENTINEL at keypoint[5]. */
async function smallFile(path: string): Promise<SkeletonRecord[]> {
  const recs = [...synthRecords({ seed: 3, subjects: 2, trainSubjects: 1, repetitions: 1 })]
    .slice(0, 20) as SkeletonRecord[];
  recs[9].keypoint[5] = SENTINEL;
  await writeSkeletonArrow(path, { ...synthMeta(), batchSize: 8 }, recs);
  return recs;
}

/** Flips one bit of the sentinel's bytes in the file: a value that is wrong, not absurd. */
async function flipSentinel(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  const pat = new Uint8Array(new Float32Array([SENTINEL]).buffer);
  const at = bytes.findIndex((_, i) => pat.every((p, k) => bytes[i + k] === p));
  assert(at > 0, "the sentinel is in the file");
  bytes[at] ^= 0x01;
  await Deno.writeFile(path, bytes);
}

Deno.test("checksum: a flipped byte in a batch's values names the file and the batch", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/d.arrow`;
  await smallFile(path);
  await flipSentinel(path);
  const f = await SkeletonFile.open(path);
  try {
    assertEquals((await f.readBatch(0)).length, 8); // the other batches are fine
    const e = await assertRejects(() => f.readBatch(1), DataError);
    assert(e.message.startsWith(`${path} [record batch 1]: damaged: checksum`), e.message);
    assertEquals(locationOf(e), { file: path, record: "record batch 1" });
    await assertRejects(() => f.read(9), DataError);
  } finally {
    await f.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("checksum: inspect and render of a damaged file fail with one line naming it", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/d.arrow`;
  const recs = await smallFile(path);
  await flipSentinel(path);
  const inspect = await runCli(["inspect", path]);
  assertEquals(inspect.code, 1);
  assert(
    inspect.stderr.trim().split("\n").length === 1 &&
      inspect.stderr.includes(`${path} [record batch 1]: damaged: checksum`),
    inspect.stderr,
  );
  const render = await runCli(["render", path, "--sample", recs[9].name, "-o", `${dir}/r.npy`]);
  assertEquals(render.code, 1);
  assert(render.stderr.includes(`${path} [record batch 1]: damaged`), render.stderr);
  assert(!(await Deno.stat(`${dir}/r.npy`).catch(() => null)), "render wrote its output");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("checksum: a file written without checksums still reads", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/d.arrow`, old = `${dir}/old.arrow`;
  const recs = await smallFile(path);
  // rewritten as files were before checksums: no schema flag, no batch metadata
  const table = arrow.tableFromIPC(await Deno.readFile(path));
  const md = new Map(table.schema.metadata);
  md.delete(CHECKSUMS);
  const schema = new arrow.Schema(table.schema.fields, md);
  const batches = table.batches.map((b) => new arrow.RecordBatch(schema, b.data));
  assert(table.batches.every((b) => b.metadata.has(CHECKSUM_KEY)), "a checksum per batch");
  await Deno.writeFile(old, arrow.tableToIPC(new arrow.Table(schema, batches), "file"));
  const f = await SkeletonFile.open(old);
  try {
    assertEquals(f.size, recs.length);
    assertEquals((await f.read(9)).keypoint[5], Math.fround(SENTINEL));
  } finally {
    await f.close();
  }
  await Deno.remove(dir, { recursive: true });
});
