// The pickle reader: pyskl's exact layout written by numpy (protocols 2, 4, 5; float32
// HRNet 2D with scores and float16 3D), the real NW-UCLA pickle, and refusals.
import { fileURLToPath } from "node:url";
import { readClassNames } from "../data/classes.ts";
import { convertPyskl } from "../data/convert_pyskl.ts";
import { DataError, SkeletonFile } from "../data/schema.ts";
import { asFloat32, readSafetensors } from "../io/safetensors.ts";
import { type NdArray, parsePickle, PickleError, type PyValue, readPickle } from "../io/pickle.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { dataTest } from "./datasets.ts";

const fx = (n: string) => fileURLToPath(new URL(`./fixtures/${n}`, import.meta.url));

Deno.test("pickle: pyskl 2D annotations (protocols 2, 4, 5) read back equal", async () => {
  const expected = await readSafetensors(fx("pyskl_expected.safetensors"));
  for (const proto of [2, 4, 5]) {
    const root = await readPickle(fx(`pyskl2d_p${proto}.pickle`)) as Map<string, PyValue>;
    const anns = root.get("annotations") as Map<string, PyValue>[];
    assertEquals(anns.length, 4);
    for (const a of anns) {
      const name = a.get("frame_dir") as string;
      const kp = a.get("keypoint") as NdArray, sc = a.get("keypoint_score") as NdArray;
      assertEquals(kp.dtype, "f4");
      const want = asFloat32(expected.tensors.get(`2d.${name}.keypoint`)!);
      assertEquals(kp.shape, expected.tensors.get(`2d.${name}.keypoint`)!.shape);
      assert(
        (kp.data as Float32Array).every((v, i) => v === want[i]),
        `protocol ${proto} ${name} keypoints`,
      );
      const wsc = asFloat32(expected.tensors.get(`2d.${name}.score`)!);
      assert(
        (sc.data as Float32Array).every((v, i) => v === wsc[i]),
        `protocol ${proto} ${name} scores`,
      );
      assertEquals(a.get("img_shape"), [1080, 1920]);
      assertEquals(a.get("total_frames"), kp.shape[1]);
    }
    const split = root.get("split") as Map<string, PyValue>;
    assertEquals(
      (split.get("xsub_train") as string[]).length + (split.get("xsub_val") as string[]).length,
      4,
    );
  }
});

Deno.test("pickle: pyskl 3D float16 annotations convert to Arrow with splits", async () => {
  const expected = await readSafetensors(fx("pyskl_expected.safetensors"));
  const out = await Deno.makeTempFile({ suffix: ".arrow" });
  const report = await convertPyskl(fx("pyskl3d_p4.pickle"), out);
  assertEquals(report.written, 4);
  const f = await SkeletonFile.open(out);
  assertEquals([f.meta.layout, f.meta.channels, f.meta.keypointDtype], ["ntu25", 3, "f16"]);
  assertEquals(f.split("xsub_train").length + f.split("xsub_val").length, 4);
  for (let i = 0; i < 4; i++) {
    const r = await f.read(i);
    const want = asFloat32(expected.tensors.get(`3d.${r.name}.keypoint`)!);
    assert(r.keypoint.every((v, k) => v === want[k]), `${r.name}: float16 values survive exactly`);
    assertEquals(r.label, Number(r.name.slice(-3)) - 1);
  }
  await f.close();
  const out2 = await Deno.makeTempFile({ suffix: ".arrow" });
  const r2 = await convertPyskl(fx("pyskl2d_p2.pickle"), out2);
  assertEquals(r2.written, 4);
  const f2 = await SkeletonFile.open(out2);
  assertEquals([f2.meta.layout, f2.meta.channels], ["coco17", 2]);
  const two = await f2.read(f2.index.names.indexOf("S001C002P003R002A050"));
  assertEquals(two.persons, 2);
  assert(two.score !== null && two.imgShape?.[1] === 1920);
  await f2.close();
  await Deno.remove(out);
  await Deno.remove(out2);
});

dataTest(
  "pickle: the real NW-UCLA val_label.pkl (protocol 4)",
  ["nw-ucla", "val_label.pkl"],
  async (path) => {
    const v = await readPickle(path) as Map<string, PyValue>[];
    assertEquals(v.length, 464);
    assert(v.every((e) => /_v03$/.test(e.get("file_name") as string)), "all view 3");
    assertEquals(new Set(v.map((e) => e.get("label"))).size, 10);
  },
);

Deno.test("pickle: unknown opcodes, disallowed classes and truncation are refused by name", () => {
  const e1 = assertThrows(() => parsePickle(Uint8Array.of(0x80, 4, 0xff), "x.pkl"), PickleError);
  assert(e1.message.includes("x.pkl") && e1.message.includes("unknown opcode 0xff"), e1.message);
  const glob = new TextEncoder().encode("cos\nsystem\n");
  const e2 = assertThrows(
    () => parsePickle(Uint8Array.of(0x80, 2, ...glob), "evil.pkl"),
    PickleError,
  );
  assert(e2.message.includes("refusing to load class os.system"), e2.message);
  const e3 = assertThrows(
    () => parsePickle(Uint8Array.of(0x80, 4, 0x8c, 10, 65), "t.pkl"),
    PickleError,
  );
  assert(e3.message.includes("truncated"), e3.message);
});

Deno.test("pyskl: class names are NTU's only for NTU samples; a class list names them", async () => {
  const out = await Deno.makeTempFile({ suffix: ".arrow" });
  await convertPyskl(fx("pyskl2d_p2.pickle"), out); // NTU sample names, labels up to 59
  const f = await SkeletonFile.open(out);
  assertEquals([f.meta.classes.length, f.meta.classes[0]], [60, "drink water"]);
  await f.close();
  const list = await Deno.makeTempFile({ suffix: ".txt" });
  await Deno.writeTextFile(list, Array.from({ length: 59 }, (_, i) => `c${i}`).join("\n"));
  const e = await assertRejects(
    () =>
      readClassNames(list).then((classes) =>
        convertPyskl(fx("pyskl2d_p2.pickle"), out, { classes })
      ),
    DataError,
  );
  assert(
    e.message.includes("S002C003P008R001A060") && e.message.includes("59 declared"),
    e.message,
  );
  await Deno.writeTextFile(list, Array.from({ length: 60 }, (_, i) => `c${i}`).join("\n") + "\n");
  await convertPyskl(fx("pyskl2d_p2.pickle"), out, { classes: await readClassNames(list) });
  const g = await SkeletonFile.open(out);
  assertEquals([g.meta.classes.length, g.meta.classes[59]], [60, "c59"]);
  await g.close();
  await Deno.remove(out);
  await Deno.remove(list);
});

dataTest(
  "pyskl: Penn Action converts with its 15 classes, not NTU's",
  ["penn-action", "penn_action_coco17.pkl"],
  async (path) => {
    const out = await Deno.makeTempFile({ suffix: ".arrow" });
    await convertPyskl(path, out);
    const f = await SkeletonFile.open(out);
    assertEquals([f.meta.classes.length, f.meta.classes[14], f.meta.layout], [
      15,
      "class 14",
      "coco17",
    ]);
    assertEquals([f.split("train").length, f.split("test").length], [1258, 1068]);
    await f.close();
    const named = await readClassNames(
      new URL("../examples/penn_action_classes.txt", import.meta.url).pathname,
    );
    await convertPyskl(path, out, { classes: named });
    const g = await SkeletonFile.open(out);
    assertEquals([g.meta.classes[0], g.meta.classes[14]], ["baseball_pitch", "tennis_serve"]);
    await g.close();
    await Deno.remove(out);
  },
);
