// The Arrow skeleton schema: round trip (f32 and f16 keypoints, nullable columns, splits),
// random access by sample, and clear errors for files of the wrong schema and bad records.
import * as arrow from "apache-arrow";
import {
  DataError,
  type DatasetMeta,
  SkeletonFile,
  type SkeletonRecord,
  writeSkeletonArrow,
} from "../data/schema.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";

function rec(i: number, frames: number, persons: number, v = 25, c = 3): SkeletonRecord {
  const n = persons * frames * v;
  return {
    name: `S001C00${1 + (i % 3)}P00${i}R001A00${1 + (i % 4)}`,
    label: i % 4,
    subject: i,
    camera: 1 + (i % 3),
    setup: 1,
    replication: 1,
    frames,
    persons,
    keypoint: Float32Array.from({ length: n * c }, (_, k) => Math.sin(k + i) * 0.5),
    score: i % 2 ? null : Float32Array.from({ length: n }, (_, k) => (k % 7) / 7),
    keypoint2d: Float32Array.from({ length: n * 2 }, (_, k) => 100 + k),
    imgShape: i % 2 ? null : [1080, 1920],
    splits: i % 2 ? ["train"] : ["test", "extra"],
  };
}

const meta = (dtype: "f32" | "f16"): DatasetMeta => ({
  dataset: "unit",
  layout: "ntu25",
  channels: 3,
  classes: ["a", "b", "c", "d"],
  keypointDtype: dtype,
  batchSize: 3,
});

Deno.test("arrow: round trip with random access and split index", async () => {
  const dir = await Deno.makeTempDir();
  for (const dtype of ["f32", "f16"] as const) {
    const path = `${dir}/d-${dtype}.arrow`;
    const recs = Array.from({ length: 8 }, (_, i) => rec(i, 5 + i, 1 + (i % 2)));
    const report = await writeSkeletonArrow(path, meta(dtype), [...recs, {
      skip: "S999",
      reason: "missing skeleton",
    }]);
    assertEquals(report.written, 8);
    assertEquals(report.skipped.length, 1);
    const f = await SkeletonFile.open(path);
    assertEquals(f.size, 8);
    assertEquals(f.numBatches, 3);
    assertEquals(f.split("train"), [1, 3, 5, 7]);
    assertEquals(f.meta.classes, ["a", "b", "c", "d"]);
    for (const i of [0, 4, 7]) {
      const r = await f.read(i);
      assertEquals(r.name, recs[i].name);
      assertEquals([r.frames, r.persons, r.label, r.camera], [
        recs[i].frames,
        recs[i].persons,
        recs[i].label,
        recs[i].camera,
      ]);
      const tol = dtype === "f16" ? 1e-3 : 0;
      assert(
        r.keypoint.every((v, k) => Math.abs(v - recs[i].keypoint[k]) <= tol),
        `${dtype} keypoints round trip`,
      );
      assertEquals(r.score === null, recs[i].score === null);
      assertEquals(r.imgShape, recs[i].imgShape);
      assertEquals(r.splits, recs[i].splits);
      assertEquals(Array.from(r.keypoint2d!), Array.from(recs[i].keypoint2d!));
    }
    const e = await assertRejects(() => f.read(8), DataError);
    assert(e.message.includes("out of range"), e.message);
    const e2 = assertThrows(() => f.split("nope"), DataError);
    assert(e2.message.includes('no split "nope"') && e2.message.includes("train"), e2.message);
    await f.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("arrow: an Arrow file of another schema is refused, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/other.arrow`;
  await Deno.writeFile(
    path,
    await arrow.RecordBatchFileWriter.writeAll(arrow.tableFromArrays({ x: Int32Array.of(1) }))
      .toUint8Array(),
  );
  const e = await assertRejects(() => SkeletonFile.open(path), DataError);
  assert(e.message.startsWith(path) && e.message.includes("wrong schema"), e.message);
  await Deno.writeTextFile(`${dir}/junk.arrow`, "not arrow at all");
  const e2 = await assertRejects(() => SkeletonFile.open(`${dir}/junk.arrow`), DataError);
  assert(
    e2.message.includes("junk.arrow") && e2.message.includes("not a readable Arrow"),
    e2.message,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("arrow: NaN coordinates and empty sequences are refused with the record named", async () => {
  const dir = await Deno.makeTempDir();
  const bad = rec(1, 4, 1);
  bad.keypoint[5] = NaN;
  const e = await assertRejects(
    () => writeSkeletonArrow(`${dir}/a.arrow`, meta("f32"), [bad]),
    DataError,
  );
  assert(e.message.includes(bad.name) && e.message.includes("non-finite"), e.message);
  const empty = {
    ...rec(2, 1, 1),
    frames: 0,
    keypoint: new Float32Array(0),
    score: null,
    keypoint2d: null,
  };
  const e2 = await assertRejects(
    () => writeSkeletonArrow(`${dir}/b.arrow`, meta("f32"), [empty]),
    DataError,
  );
  assert(e2.message.includes("empty sequence"), e2.message);
  await Deno.remove(dir, { recursive: true });
});
