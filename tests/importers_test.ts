// Importers on the real files in ../shared/datasets, and on broken inputs.
import { join } from "node:path";
import { convertNtu, convertNwucla, readNameList } from "../data/convert.ts";
import { ntuRecord, ntuSplits, parseNtuName, parseSkeletonText } from "../data/importers/ntu.ts";
import { nwuclaRecord } from "../data/importers/nwucla.ts";
import { DataError, SkeletonFile } from "../data/schema.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { dataTest } from "./datasets.ts";

const SAMPLES = {
  S001C001P001R001A011: { bodies: 1, label: 10 },
  S002C001P003R001A003: { bodies: 1, label: 2 },
  S004C002P003R001A017: { bodies: 1, label: 16 },
  S003C001P015R001A034: { bodies: 1, label: 33 },
  S001C003P008R002A058: { bodies: 2, label: 57 },
};

dataTest(
  "ntu: real .skeleton files: frames, bodies, labels, splits from names",
  ["ntu60-samples"],
  async (dir) => {
    for (const [name, want] of Object.entries(SAMPLES)) {
      const path = join(dir, `${name}.skeleton`);
      const text = await Deno.readTextFile(path);
      assert(text.includes("\r\n"), "the samples use CRLF line endings");
      const header = Number(text.split(/\r?\n/)[0]);
      const parsed = parseSkeletonText(text, path);
      assertEquals(parsed.frames, header, `${name} frame count`);
      assert(header >= 70 && header <= 124, `${name}: ${header} frames in the documented 70-124`);
      const r = ntuRecord(text, path, name, 60)!;
      assertEquals(r.persons, want.bodies, `${name} bodies`);
      assertEquals(r.label, want.label, `${name} label`);
      assert(r.frames <= header && r.frames > 0, `${name} frames after trimming`);
      const meta = parseNtuName(name)!;
      assertEquals(r.splits, ntuSplits(meta, 60));
      assertEquals(r.keypoint.length, r.persons * r.frames * 75);
      assertEquals(r.keypoint2d!.length, r.persons * r.frames * 50);
      // 3D in metres (depth 1-6 m), 2D inside the 1920x1080 colour image (mostly)
      const z = r.keypoint.filter((_, i) => i % 3 === 2 && r.keypoint[i] !== 0);
      assert(z.every((v) => v > 0.5 && v < 8), `${name}: depths in metres`);
      const xs = r.keypoint2d!.filter((_, i) => i % 2 === 0 && r.keypoint2d![i] !== 0);
      assert(
        xs.filter((x) => x > 0 && x < 1920).length / xs.length > 0.95,
        `${name}: colour x in the image`,
      );
    }
    // S001C003P008R002A058: performer 8 is xsub train, camera 3 is xview train
    assertEquals(ntuSplits(parseNtuName("S001C003P008R002A058")!, 60), [
      "xsub_train",
      "xview_train",
    ]);
    assertEquals(ntuSplits(parseNtuName("S003C001P015R001A034")!, 60), ["xsub_train", "xview_val"]);
    assertEquals(ntuSplits(parseNtuName("S002C001P003R001A003")!, 60), ["xsub_val", "xview_val"]);
  },
);

dataTest(
  "ntu: converting the folder to Arrow keeps every sample",
  ["ntu60-samples"],
  async (dir) => {
    const out = await Deno.makeTempFile({ suffix: ".arrow" });
    const report = await convertNtu(dir, out, { classes: 60 });
    assertEquals(report.written, 5);
    const f = await SkeletonFile.open(out);
    assertEquals(f.size, 5);
    assertEquals(f.meta.layout, "ntu25");
    const two = f.index.names.indexOf("S001C003P008R002A058");
    assertEquals((await f.read(two)).persons, 2);
    await f.close();
    await Deno.remove(out);
  },
);

dataTest(
  "ntu: split lists from names match the NTU statistics",
  ["ntu60-statistics"],
  async (dir) => {
    const names = [...await readNameList(join(dir, "skes_available_name.txt"))];
    const performer = (await Deno.readTextFile(join(dir, "performer.txt"))).trim().split(/\r?\n/)
      .map(Number);
    const camera = (await Deno.readTextFile(join(dir, "camera.txt"))).trim().split(/\r?\n/).map(
      Number,
    );
    const label = (await Deno.readTextFile(join(dir, "label.txt"))).trim().split(/\r?\n/).map(
      Number,
    );
    const missing = await readNameList(join(dir, "samples_with_missing_skeletons.txt"));
    assertEquals(missing.size, 302);
    let xsubTrain = 0, xviewTrain = 0;
    names.forEach((n, i) => {
      const m = parseNtuName(n)!;
      assertEquals([m.performer, m.camera, m.action], [performer[i], camera[i], label[i]], n);
      const s = ntuSplits(m, 60);
      if (s[0] === "xsub_train") xsubTrain++;
      if (s[1] === "xview_train") xviewTrain++;
    });
    assertEquals([xsubTrain, names.length - xsubTrain], [40091, 16487], "xsub train/test");
    assertEquals([xviewTrain, names.length - xviewTrain], [37646, 18932], "xview train/test");
  },
);

dataTest(
  "nw-ucla: 1,484 sequences, 1,020 / 464 split, 10 classes",
  ["nw-ucla", "all_sqe"],
  async (dir) => {
    const out = await Deno.makeTempFile({ suffix: ".arrow" });
    const report = await convertNwucla(dir, out);
    assertEquals(report.written, 1484);
    const f = await SkeletonFile.open(out);
    assertEquals(f.split("train").length, 1020);
    assertEquals(f.split("val").length, 464);
    assertEquals(new Set(f.index.labels).size, 10);
    assertEquals(Math.min(...f.index.labels), 0);
    assertEquals(Math.max(...f.index.labels), 9);
    const r = await f.read(0);
    assertEquals(r.keypoint.length, r.frames * 60);
    assert(r.frames >= 1 && r.frames <= 201);
    await f.close();
    await Deno.remove(out);
  },
);

Deno.test("ntu: truncated and malformed files name the file and line", () => {
  const good = ["1", "1", "72057594037931648 0 1 1 1 1 0 -0.1 0.1 2", "25"];
  for (let j = 0; j < 25; j++) good.push("0.2 0.19 3.8 276 190 1032 514 -0.17 0.04 0.97 -0.15 2");
  const text = good.join("\r\n");
  parseSkeletonText(text, "ok.skeleton");
  const trunc = assertThrows(
    () => parseSkeletonText(good.slice(0, 20).join("\n"), "t.skeleton"),
    DataError,
  );
  assert(
    trunc.message.startsWith("t.skeleton") && trunc.message.includes("truncated"),
    trunc.message,
  );
  const bad = [...good];
  bad[10] = "0.2 0.19 abc 276 190 1032 514 -0.17 0.04 0.97 -0.15 2";
  const e = assertThrows(() => parseSkeletonText(bad.join("\n"), "b.skeleton"), DataError);
  assert(e.message.includes("b.skeleton [line 11]") && e.message.includes("joint 7"), e.message);
  const nan = [...good];
  nan[12] = "NaN 0.19 3 276 190 1032 514 -0.17 0.04 0.97 -0.15 2";
  assertThrows(() => parseSkeletonText(nan.join("\n"), "n.skeleton"), DataError);
  const noBody = ntuRecord("2\n0\n0\n", "empty.skeleton", "S001C001P001R001A001", 60);
  assertEquals(noBody, null, "a file with no body is a counted skip, not an error");
  const wrongName = assertThrows(() => ntuRecord(text, "x.skeleton", "foo", 60), DataError);
  assert(wrongName.message.includes("SsssCcccPpppRrrrAaaa"), wrongName.message);
});

Deno.test("nw-ucla: malformed JSON records are named", () => {
  const e = assertThrows(
    () => nwuclaRecord({ file_name: "a01_s01_e00_v01", skeletons: [], label: 1 }, "f.json"),
    DataError,
  );
  assert(e.message.includes("f.json [a01_s01_e00_v01]") && e.message.includes("empty"), e.message);
  const e2 = assertThrows(
    () => nwuclaRecord({ file_name: "a01_s01_e00_v01", skeletons: [[[1, 2]]], label: 1 }, "g.json"),
    DataError,
  );
  assert(e2.message.includes("20 joints"), e2.message);
});
