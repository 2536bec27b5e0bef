// Bad input stays cheap: what a reader spends is bounded by the input's size, not by a number
// the input declares. A huge label, joint count or inflated size is refused, naming the file
// (and the record), before anything is allocated for it.
import { fileURLToPath } from "node:url";
import { MAX_CLASSES } from "../data/classes.ts";
import { convertNumpy } from "../data/convert_numpy.ts";
import { convertKinetics, convertOpenpose } from "../data/convert_openpose.ts";
import { convertPyskl } from "../data/convert_pyskl.ts";
import { MAX_JOINTS, parseLayout } from "../data/layout_file.ts";
import { DataError, SkeletonFile } from "../data/schema.ts";
import { locationOf } from "../io/errors.ts";
import { NpyError } from "../io/npy.ts";
import { encodeNpy } from "../io/png.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { runCli } from "./cli_run.ts";
import { zipOf } from "./zip.ts";

const fx = (n: string) => fileURLToPath(new URL(`./fixtures/${n}`, import.meta.url));

/** A chain of `V` joints, left_/right_ named so that flip pairs come from the names. */
function chainLayout(V: number) {
  return {
    name: `chain${V}`,
    joints: Array.from({ length: V }, (_, i) => `${i % 2 ? "left" : "right"}_j${i >> 1}`),
    parents: Array.from({ length: V }, (_, i) => Math.max(0, i - 1)),
  };
}

/** Milliseconds to validate a chain of V joints (the best of three, against a busy machine). */
function layoutMs(V: number): number {
  const json = chainLayout(V);
  let best = Infinity;
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    parseLayout({ ...json, name: `chain${V}_${k}` }, "big.json");
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

Deno.test("bounds: a layout of MAX_JOINTS joints validates in linear time", () => {
  const l = parseLayout(chainLayout(MAX_JOINTS), "big.json");
  assert(l.joints.length === MAX_JOINTS && l.flipPairs.length === MAX_JOINTS / 2);
  // quadratic checks took 0.4-1.2 s here (best of three, warm); linear ones take 20-60 ms
  const ms = layoutMs(MAX_JOINTS);
  assert(ms < 200, `${MAX_JOINTS} joints took ${ms.toFixed(0)} ms`);
});

Deno.test("bounds: a layout past MAX_JOINTS is refused at once, naming the cap", () => {
  const json = chainLayout(5 * MAX_JOINTS + 1);
  const t0 = performance.now();
  const e = assertThrows(() => parseLayout(json, "huge.json"), DataError);
  assert(/huge\.json: layout joints: 50001 entries, at most 10000/.test(e.message), e.message);
  assert(performance.now() - t0 < 200, `refusing took ${performance.now() - t0} ms`);
});

/** The p2 fixture with its first label (BININT1 0) replaced by a 4-byte BININT. */
async function pysklWithLabel(label: number): Promise<Uint8Array> {
  const bytes = await Deno.readFile(fx("pyskl2d_p2.pickle"));
  const at = bytes.findIndex((_, i) =>
    bytes[i] === 0x71 && bytes[i + 1] === 0x13 && bytes[i + 2] === 0x4b && bytes[i + 3] === 0
  );
  assert(at > 0, "the fixture's first label");
  const int = new Uint8Array(5);
  int[0] = 0x4a; // BININT
  new DataView(int.buffer).setInt32(1, label, true);
  return new Uint8Array([...bytes.subarray(0, at + 2), ...int, ...bytes.subarray(at + 4)]);
}

async function assertNothingIn(dir: string, what: string) {
  const left = [];
  for await (const e of Deno.readDir(dir)) left.push(e.name);
  assert(!left.some((n) => n.includes("out")), `${what} left ${left.join(", ")}`);
}

Deno.test("bounds: a pyskl label of 2^31 - 1 is an error naming the file and sample", async () => {
  const dir = await Deno.makeTempDir();
  for (const label of [2 ** 31 - 1, 1_000_000]) {
    const path = `${dir}/big.pkl`;
    await Deno.writeFile(path, await pysklWithLabel(label));
    const t0 = performance.now();
    const e = await assertRejects(() => convertPyskl(path, `${dir}/out.arrow`), DataError);
    assert(performance.now() - t0 < 2000, `label ${label} took ${performance.now() - t0} ms`);
    assert(e.message.includes(`label ${label} is not a class index`), e.message);
    assert(locationOf(e).file === path && locationOf(e).record === "S001C001P001R001A001");
    await assertNothingIn(dir, `label ${label}`);
  }
  // with declared classes, a label past them names the record too
  const path = `${dir}/p.pkl`;
  await Deno.writeFile(path, await pysklWithLabel(60));
  const e = await assertRejects(
    () => convertPyskl(path, `${dir}/out.arrow`, { classes: ["a", "b", "c"] }),
    DataError,
  );
  assert(/\[S001C001P001R001A001\]: label 60 .* 3 declared classes/.test(e.message), e.message);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bounds: numpy labels past the limit, or one-hot rows with no class, name the row", async () => {
  const dir = await Deno.makeTempDir();
  const x = `${dir}/x.npy`, y = `${dir}/y.npy`;
  await Deno.writeFile(x, encodeNpy(new Float32Array(2 * 3 * 4 * 25).fill(0.5), [2, 3, 4, 25, 1]));
  await Deno.writeFile(y, encodeNpy(new Float32Array([1, 2 ** 31 - 1]), [2]));
  let e = await assertRejects(() => convertNumpy(x, `${dir}/out.arrow`, { labels: y }), DataError);
  assert(e.message.includes(`[train_000001]: label ${2 ** 31} is not a class index`), e.message);
  await Deno.writeFile(y, encodeNpy(new Float32Array([0, 1, 0, 0, 0, 0]), [2, 3]));
  e = await assertRejects(() => convertNumpy(x, `${dir}/out.arrow`, { labels: y }), DataError);
  assert(e.message.includes(`[${y} row 1]: a one-hot label row with no class set`), e.message);
  await assertNothingIn(dir, "numpy labels");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bounds: a Kinetics label_index of 10^6 is refused, not 10^6 empty classes", async () => {
  const dir = await Deno.makeTempDir();
  await new Deno.Command("cp", { args: ["-r", `${fx("formats/kinetics")}/.`, dir] }).output();
  const lf = `${dir}/kinetics_train_label.json`;
  const labels = JSON.parse(await Deno.readTextFile(lf));
  labels.cliptrain01.label_index = 1_000_000;
  await Deno.writeTextFile(lf, JSON.stringify(labels));
  const e = await assertRejects(() => convertKinetics(dir, `${dir}/out.arrow`), DataError);
  assert(e.message.startsWith(`${lf} [cliptrain01]: label 1000000`), e.message);
  assert(MAX_CLASSES === 100_000);
  await assertNothingIn(dir, "kinetics");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bounds: numeric OpenPose labels past the limit name the CSV line", async () => {
  const dir = await Deno.makeTempDir();
  await new Deno.Command("cp", { args: ["-r", `${fx("formats/openpose")}/.`, dir] }).output();
  await Deno.writeTextFile(`${dir}/labels.csv`, "clip,label\nvideo0,0\n\nvideo1,4000000000\n");
  const e = await assertRejects(
    () => convertOpenpose(dir, `${dir}/out.arrow`, { labels: `${dir}/labels.csv` }),
    DataError,
  );
  assert(e.message.includes("labels.csv [line 4]: label 4000000000"), e.message);
  await Deno.remove(dir, { recursive: true });
});

/** An .npy header for `shape` of float32 followed by `data` bytes. */
function npyWith(shape: number[], data: Uint8Array): Uint8Array {
  const head = encodeNpy(new Float32Array(0), shape);
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

Deno.test("bounds: an .npz member is not inflated past what its header declares", async () => {
  const dir = await Deno.makeTempDir();
  const y = encodeNpy(new Float32Array([0, 1]), [2]);
  // 10 values declared, 400 MB of zeros behind them: a 400 kB zip bomb
  const bomb = npyWith([2, 5], new Uint8Array(400 << 20));
  await Deno.writeFile(
    `${dir}/bomb.npz`,
    zipOf([{ name: "x_train.npy", bytes: bomb, deflate: true }, { name: "y_train.npy", bytes: y }]),
  );
  // an honest header past the cap (its data cut short): refused before inflating anything
  const big = npyWith([2, 300_000_000], new Uint8Array(1 << 16));
  await Deno.writeFile(
    `${dir}/big.npz`,
    zipOf([{
      name: "x_train.npy",
      bytes: big,
      deflate: true,
      declaredSize: 128 + 2 * 300_000_000 * 4,
    }, { name: "y_train.npy", bytes: y }]),
  );
  for (
    const [name, want] of [["bomb", /declares \d+ bytes inflated/], ["big", /at most/]] as const
  ) {
    const path = `${dir}/${name}.npz`;
    const r = await runCli(["convert", "numpy", path, "--out", `${dir}/out.arrow`]);
    assert(r.code === 1, `${name}: exit ${r.code} ${r.stderr}`);
    assert(r.stderr.includes(`${path} [x_train.npy]`) && want.test(r.stderr), r.stderr);
    // deno itself is about 100 MiB; inflating the bomb took 400 MiB more
    assert(r.peakMiB < 300, `${name}: peak ${r.peakMiB.toFixed(0)} MiB`);
    await assertNothingIn(dir, name);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bounds: an .npz member's values must lie inside it", async () => {
  const dir = await Deno.makeTempDir();
  const y = encodeNpy(new Float32Array([0]), [1]);
  const x = npyWith([1, 4, 75], new Uint8Array(16)); // 300 values declared, 4 stored
  await Deno.writeFile(
    `${dir}/short.npz`,
    zipOf([{ name: "x_train.npy", bytes: x }, {
      name: "y_train.npy",
      bytes: y,
    }]),
  );
  const e = await assertRejects(
    () => convertNumpy(`${dir}/short.npz`, `${dir}/out.arrow`),
    NpyError,
  );
  assert(e.message.includes("[x_train.npy]: 1 x 4 x 75 <f4 values need"), e.message);
  assertEquals(locationOf(e), { file: `${dir}/short.npz`, record: "x_train.npy" });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bounds: a deflated .npz member converts to the values it holds", async () => {
  const dir = await Deno.makeTempDir();
  const x = new Float32Array(2 * 3 * 75).map((_, i) => 1 + i);
  await Deno.writeFile(
    `${dir}/d.npz`,
    zipOf([
      { name: "x_train.npy", bytes: encodeNpy(x, [2, 3, 75]), deflate: true },
      { name: "y_train.npy", bytes: encodeNpy(new Float32Array([1, 0]), [2]), deflate: true },
    ]),
  );
  await convertNumpy(`${dir}/d.npz`, `${dir}/out.arrow`);
  const f = await SkeletonFile.open(`${dir}/out.arrow`);
  try {
    assertEquals(f.index.labels, [1, 0]);
    assertEquals((await f.read(1)).keypoint[0], x[3 * 75]);
  } finally {
    await f.close();
  }
  await Deno.remove(dir, { recursive: true });
});
