// Bad input never escapes as an uncaught exception or leaves a partial output: seeded loops of
// random truncations, byte flips and field deletions of valid small files, through the Arrow
// reader and each importer. Every outcome is a valid result or a clean error naming the file.
import { fileURLToPath } from "node:url";
import { convertNwucla } from "../data/convert.ts";
import { convertNumpy } from "../data/convert_numpy.ts";
import { convertKinetics, convertOpenpose } from "../data/convert_openpose.ts";
import { NpyError } from "../io/npy.ts";
import { convertPyskl } from "../data/convert_pyskl.ts";
import { ntuRecord } from "../data/importers/ntu.ts";
import { synthMeta, synthRecords } from "../data/importers/synth.ts";
import { DataError, SkeletonFile, writeSkeletonArrow } from "../data/schema.ts";
import { PickleError } from "../io/pickle.ts";
import { Rng } from "../layers/init.ts";
import { assert } from "./assert.ts";
import { datasetPath } from "./datasets.ts";

const fx = (n: string) => fileURLToPath(new URL(`./fixtures/${n}`, import.meta.url));

/** A damaged copy of some bytes: truncated, with flipped bytes, or with a span cut out. */
function damage(bytes: Uint8Array, rng: Rng): Uint8Array {
  const kind = rng.int(3), at = rng.int(bytes.length);
  if (kind === 0) return bytes.slice(0, at);
  if (kind === 1) {
    const out = bytes.slice();
    for (let k = 0; k < 1 + rng.int(8); k++) out[rng.int(out.length)] ^= 1 + rng.int(255);
    return out;
  }
  const len = 1 + rng.int(Math.min(64, bytes.length - at));
  return new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + len)]);
}

/** The outcome is fine, or an error of the data layer whose message names `file`. */
function clean(e: unknown, file: string, what: string): void {
  const ok = (e instanceof DataError || e instanceof PickleError) && e.message.includes(file);
  assert(ok, `${what}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
}

async function leftovers(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out;
}

Deno.test("fuzz: a damaged Arrow file opens and reads cleanly or fails naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const good = `${dir}/good.arrow`;
  await writeSkeletonArrow(
    good,
    { ...synthMeta(), batchSize: 8 },
    synthRecords({ seed: 2, subjects: 2, trainSubjects: 1, repetitions: 1 }),
  );
  const bytes = await Deno.readFile(good);
  const rng = new Rng(31);
  for (let i = 0; i < 60; i++) {
    const path = `${dir}/bad${i}.arrow`;
    await Deno.writeFile(path, damage(bytes, rng));
    try {
      const f = await SkeletonFile.open(path);
      try {
        for (let b = 0; b * f.meta.batchSize < f.size; b++) await f.readBatch(b);
      } finally {
        await f.close();
      }
    } catch (e) {
      clean(e, path, `case ${i}`);
    }
    await Deno.remove(path);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fuzz: damaged pyskl pickles convert or fail cleanly, leaving nothing", async () => {
  const dir = await Deno.makeTempDir();
  const bytes = await Deno.readFile(fx("pyskl2d_p4.pickle"));
  const rng = new Rng(37);
  for (let i = 0; i < 60; i++) {
    const path = `${dir}/bad${i}.pkl`, out = `${dir}/out${i}.arrow`;
    await Deno.writeFile(path, damage(bytes, rng));
    let failed = false;
    try {
      await convertPyskl(path, out);
    } catch (e) {
      failed = true;
      clean(e, path, `case ${i}`);
    }
    await Deno.remove(path);
    const left = await leftovers(dir);
    if (failed) assert(left.length === 0, `case ${i} left ${left.join(", ")}`);
    else await Deno.remove(out);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fuzz: damaged NTU .skeleton text parses or fails naming the file", async () => {
  const src = datasetPath("ntu60-samples", "S001C001P001R001A011.skeleton");
  // a small stand-in when the dataset is absent: 2 frames, 1 body of 25 joints
  const joint = "0.1 0.2 3.0 200 150 900 500 0 0 0 1 2";
  const body = `72057594037930000 0 1 1 1 1 0 0.5 0.5 2\n25\n${Array(25).fill(joint).join("\n")}`;
  const text = src
    ? (await Deno.readTextFile(src)).split("\n").slice(0, 120).join("\n")
    : `2\n1\n${body}\n1\n${body}\n`;
  const rng = new Rng(41), bytes = new TextEncoder().encode(text);
  for (let i = 0; i < 80; i++) {
    const bad = new TextDecoder().decode(damage(bytes, rng));
    try {
      ntuRecord(bad, "bad.skeleton", "S001C001P001R001A011", 60);
    } catch (e) {
      clean(e, "bad.skeleton", `case ${i}`);
    }
  }
});

Deno.test("fuzz: NW-UCLA JSON with damaged bytes or deleted fields fails naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const frame = Array.from({ length: 20 }, (_, j) => [0.01 * j, 0.5, 3]);
  const good = { file_name: "a01_s01_e00_v01", skeletons: [frame, frame, frame], label: 1 };
  const rng = new Rng(43);
  const fields = ["file_name", "skeletons", "label"];
  for (let i = 0; i < 40; i++) {
    await Deno.mkdir(`${dir}/in`, { recursive: true });
    let text: string;
    if (i % 3 === 0) {
      const copy: Record<string, unknown> = structuredClone(good);
      delete copy[fields[rng.int(3)]];
      text = JSON.stringify(copy);
    } else if (i % 3 === 1) {
      const copy = structuredClone(good);
      (copy.skeletons[rng.int(3)][rng.int(20)] as unknown[])[rng.int(3)] = null;
      text = JSON.stringify(copy);
    } else {
      text = new TextDecoder().decode(damage(new TextEncoder().encode(JSON.stringify(good)), rng));
    }
    const path = `${dir}/in/a01_s01_e00_v01.json`;
    await Deno.writeTextFile(path, text);
    const out = `${dir}/out.arrow`;
    try {
      const r = await convertNwucla(`${dir}/in`, out);
      if (r.written === 0) throw new DataError(path, null, "skipped");
      await Deno.remove(out);
    } catch (e) {
      clean(e, path, `case ${i}`);
      assert(!(await Deno.stat(out).catch(() => null)), `case ${i}: a partial ${out}`);
    }
    await Deno.remove(`${dir}/in`, { recursive: true });
    assert((await leftovers(dir)).length === 0, `case ${i} left files`);
  }
  await Deno.remove(dir, { recursive: true });
});

/** Copies a fixture folder, damages one of its files per case, and converts it. */
async function fuzzFolder(
  name: string,
  victim: string,
  convert: (dir: string, out: string) => Promise<unknown>,
  seed: number,
): Promise<void> {
  const src = fx(`formats/${name}`);
  const original = await Deno.readFile(`${src}/${victim}`);
  const rng = new Rng(seed);
  for (let i = 0; i < 25; i++) {
    const dir = await Deno.makeTempDir();
    await new Deno.Command("cp", { args: ["-r", `${src}/.`, dir] }).output();
    const path = `${dir}/${victim}`;
    await Deno.writeFile(path, damage(original, rng));
    const out = `${dir}/out.arrow`;
    try {
      await convert(dir, out);
    } catch (e) {
      const ok = (e instanceof DataError || e instanceof PickleError || e instanceof NpyError) &&
        e.message.includes(dir);
      assert(ok, `${name} case ${i}: ${e instanceof Error ? `${e.name}: ${e.message}` : e}`);
      assert(!(await Deno.stat(out).catch(() => null)), `${name} case ${i}: a partial output`);
    }
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fuzz: damaged Kinetics-skeleton, OpenPose and GCN numpy inputs fail cleanly", async () => {
  await fuzzFolder(
    "kinetics",
    "kinetics_train/cliptrain01.json",
    (d, o) => convertKinetics(d, o),
    47,
  );
  await fuzzFolder(
    "openpose",
    "video1/video1_000000000002_keypoints.json",
    (d, o) => convertOpenpose(d, o, { labels: `${d}/labels.csv` }),
    53,
  );
  await fuzzFolder("stgcn", "train_data_joint.npy", (d, o) => convertNumpy(d, o), 59);
  await fuzzFolder("stgcn", "train_label.pickle", (d, o) => convertNumpy(d, o), 61);
});
