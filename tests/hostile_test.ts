// Hostile input through the CLI, as a user or a CI job meets it: for each reader, seeded
// truncations and bit flips, huge declared sizes and counts, NaN / Inf, wrong dtypes and
// shapes, crafted pickles. Every case must end within a time bound proportional to its size,
// under a memory bound, with exit 1 or 2, one line naming the file, and an empty output
// folder. (tests/fuzz_test.ts fuzzes the readers in-process; this runs the real commands.)
import { fileURLToPath } from "node:url";
import { synthMeta, synthRecords } from "../data/importers/synth.ts";
import { writeSkeletonArrow } from "../data/schema.ts";
import { encodeNpy } from "../io/png.ts";
import { Rng } from "../layers/init.ts";
import { assert } from "./assert.ts";
import { runCli } from "./cli_run.ts";
import { zipOf } from "./zip.ts";

const fx = (n: string) => fileURLToPath(new URL(`./fixtures/${n}`, import.meta.url));
const enc = (s: string) => new TextEncoder().encode(s);

/** Deno and the CLI's modules take about 100 MiB; a case may use this much more. */
const MEMORY_MIB = 400;

/** A case: the files it writes into IN, the command to run, and the file its error names. */
interface Case {
  name: string;
  /** Writes the inputs; returns the CLI arguments (OUT is the output file to pass). */
  build(inDir: string, out: string): Promise<string[]>;
  /** The path (inside IN) the one-line error must name; default IN itself. */
  names?: string;
  /** Random bit flips may land in a value no format without a checksum can tell from a true
   * one: then a clean success (exit 0, the output and nothing else) is right too. */
  mayPass?: boolean;
}

function truncate(b: Uint8Array, rng: Rng): Uint8Array {
  return b.slice(0, 1 + rng.int(b.length - 1));
}

function flip(b: Uint8Array, rng: Rng, n = 4): Uint8Array {
  const out = b.slice();
  for (let k = 0; k < n; k++) out[rng.int(out.length)] ^= 1 << rng.int(8);
  return out;
}

/** A command on one written file: `write(file)` then `args(file)`. */
function fileCase(
  name: string,
  file: string,
  bytes: () => Promise<Uint8Array> | Uint8Array,
  args: (f: string, out: string) => string[],
): Case {
  return {
    name,
    names: file,
    build: async (dir, out) => {
      await Deno.writeFile(`${dir}/${file}`, await bytes());
      return args(`${dir}/${file}`, out);
    },
  };
}

const pyskl = (f: string, out: string) => ["convert", "pyskl", f, "-o", out];
const numpyX = (labels: string) => (f: string, out: string) => [
  "convert",
  "numpy",
  f,
  "--labels",
  labels,
  "-o",
  out,
];
const numpy = (f: string, out: string) => ["convert", "numpy", f, "-o", out];

/** The p2 fixture with its first label replaced by a 4-byte int. */
async function pysklLabel(label: number): Promise<Uint8Array> {
  const b = await Deno.readFile(fx("pyskl2d_p2.pickle"));
  const at = b.findIndex((_, i) => b[i] === 0x71 && b[i + 1] === 0x13 && b[i + 2] === 0x4b);
  const int = new Uint8Array([0x4a, 0, 0, 0, 0]);
  new DataView(int.buffer).setInt32(1, label, true);
  return new Uint8Array([...b.subarray(0, at + 2), ...int, ...b.subarray(at + 4)]);
}

/** An .npy header of any descr and shape text, then `data`. */
function npyRaw(descr: string, shape: string, data: Uint8Array, fortran = false): Uint8Array {
  const flag = fortran ? "True" : "False";
  const dict = `{'descr': '${descr}', 'fortran_order': ${flag}, 'shape': ${shape}, }`;
  const head = enc(dict.padEnd(117, " ") + "\n");
  const out = new Uint8Array(10 + head.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, head.length, 0]);
  out.set(head, 10);
  out.set(data, 10 + head.length);
  return out;
}

const goodX = () => encodeNpy(new Float32Array(2 * 3 * 4 * 25).fill(0.5), [2, 3, 4, 25, 1]);

/** A small Arrow file written by heatformer (8-row batches). */
async function goodArrow(): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  const recs = [...synthRecords({ seed: 3, subjects: 2, trainSubjects: 1, repetitions: 1 })];
  await writeSkeletonArrow(`${dir}/a.arrow`, { ...synthMeta(), batchSize: 8 }, recs.slice(0, 20));
  const b = await Deno.readFile(`${dir}/a.arrow`);
  await Deno.remove(dir, { recursive: true });
  return b;
}

/** A safetensors file whose header says `header` (length given or true). */
function safetensors(header: string, data: Uint8Array, declared?: bigint): Uint8Array {
  const h = enc(header);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, declared ?? BigInt(h.length), true);
  return new Uint8Array([...len, ...h, ...data]);
}

/** A folder copied from a fixture, one of its files replaced. */
function folderCase(
  name: string,
  fixture: string,
  victim: string,
  bytes: (orig: Uint8Array) => Uint8Array | Promise<Uint8Array>,
  args: (dir: string, out: string) => string[],
): Case {
  return {
    name,
    names: victim.endsWith("labels.csv") || victim.endsWith("label.json") ? victim : undefined,
    build: async (dir, out) => {
      await new Deno.Command("cp", { args: ["-r", `${fx(fixture)}/.`, dir] }).output();
      await Deno.writeFile(
        `${dir}/${victim}`,
        await bytes(await Deno.readFile(`${dir}/${victim}`)),
      );
      return args(dir, out);
    },
  };
}

const NTU = "S001C001P001R001A011";
function ntuText(frames = "2", bodies = "1", joints = "25", value = "0.1"): string {
  const joint = `${value} 0.2 3.0 200 150 900 500 0 0 0 1 2`;
  const body = `72057594037930000 0 1 1 1 1 0 0.5 0.5 2\n${joints}\n${
    Array(25).fill(joint).join("\n")
  }`;
  return `${frames}\n${bodies}\n${body}\n1\n${body}\n`;
}
const ntuCase = (name: string, text: (rng: Rng) => string | Uint8Array): Case => ({
  name,
  build: async (dir, out) => {
    const t = text(new Rng(name.length * 7919));
    await Deno.writeFile(`${dir}/${NTU}.skeleton`, typeof t === "string" ? enc(t) : t);
    return ["convert", "ntu", dir, "-o", out];
  },
});

function ucla(skeletons: unknown, extra: Record<string, unknown> = {}): Uint8Array {
  return enc(JSON.stringify({ file_name: "a01_s01_e00_v01", skeletons, label: 1, ...extra }));
}
const frame = (v = 0.5) => Array.from({ length: 20 }, (_, j) => [0.01 * j, v, 3]);
const uclaCase = (name: string, bytes: () => Uint8Array): Case => ({
  name,
  build: async (dir, out) => {
    await Deno.writeFile(`${dir}/a01_s01_e00_v01.json`, bytes());
    return ["convert", "nw-ucla", dir, "-o", out];
  },
});

const layoutCase = (name: string, json: () => string): Case =>
  fileCase(name, "layout.json", () => enc(json()), (f, out) => [
    "convert",
    "pyskl",
    fx("pyskl_star5.pickle"),
    "--layout",
    f,
    "-o",
    out,
  ]);

/** Hostile pyskl pickles. */
function casesPysklPickles(rng: Rng): Case[] {
  const pk = () => Deno.readFile(fx("pyskl2d_p4.pickle"));
  return [
    fileCase("pickle truncated", "a.pkl", async () => truncate(await pk(), rng), pyskl),
    {
      ...fileCase("pickle bit flips", "a.pkl", async () => flip(await pk(), rng, 8), pyskl),
      mayPass: true,
    },
    fileCase("pickle label 2^31-1", "a.pkl", () => pysklLabel(2 ** 31 - 1), pyskl),
    fileCase(
      "pickle os.system",
      "a.pkl",
      () => enc("cos\nsystem\n(S'touch /tmp/pwned'\ntR."),
      pyskl,
    ),
    fileCase(
      "pickle builtins.eval",
      "a.pkl",
      () =>
        new Uint8Array([
          0x80,
          4,
          0x8c,
          8,
          ...enc("builtins"),
          0x8c,
          4,
          ...enc("eval"),
          0x93,
          0x8c,
          2,
          ...enc("1+"),
          0x85,
          0x52,
          0x2e,
        ]),
      pyskl,
    ),
    fileCase(
      "pickle huge string length",
      "a.pkl",
      () => new Uint8Array([0x80, 4, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x2e]),
      pyskl,
    ),
  ];
}

/** Hostile numpy .npy / .npz. */
function casesNumpyNpyNpz(rng: Rng): Case[] {
  return [
    fileCase(
      "npy truncated",
      "x.npy",
      () => truncate(goodX(), rng),
      numpyX(fx("formats/stgcn/train_label.pickle")),
    ),
    fileCase(
      "npy huge shape",
      "x.npy",
      () => npyRaw("<f4", "(1000000000000, 3, 300, 25, 2)", new Uint8Array(64)),
      numpyX(fx("formats/stgcn/train_label.pickle")),
    ),
    fileCase(
      "npy wrong dtype",
      "x.npy",
      () => npyRaw("<c16", "(2, 3, 4, 25, 1)", new Uint8Array(9600)),
      numpyX(fx("formats/stgcn/train_label.pickle")),
    ),
    fileCase(
      "npy wrong shape",
      "x.npy",
      () => encodeNpy(new Float32Array(300).fill(1), [3, 100]),
      numpyX(fx("formats/stgcn/train_label.pickle")),
    ),
    fileCase(
      "npy NaN values",
      "x.npy",
      async () => {
        const b = await Deno.readFile(fx("formats/stgcn/train_data_joint.npy"));
        const start = 10 + new DataView(b.buffer).getUint16(8, true);
        new Float32Array(b.buffer, start, 64).fill(NaN);
        return b;
      },
      numpyX(fx("formats/stgcn/train_label.pickle")),
    ),
    fileCase(
      "npy labels Inf",
      "y.npy",
      () => encodeNpy(new Float32Array([0, Infinity]), [2]),
      (
        f,
        out,
      ) => ["convert", "numpy", fx("formats/stgcn/train_data_joint.npy"), "--labels", f, "-o", out],
    ),
    fileCase(
      "npz bomb",
      "b.npz",
      () =>
        zipOf([{
          name: "x_train.npy",
          bytes: npyRaw("<f4", "(2, 5)", new Uint8Array(200 << 20)),
          deflate: true,
        }, { name: "y_train.npy", bytes: encodeNpy(new Float32Array(2), [2]) }]),
      numpy,
    ),
    fileCase(
      "npz huge declared size",
      "b.npz",
      () =>
        zipOf([{
          name: "x_train.npy",
          bytes: npyRaw("<f4", "(4000, 1000, 150)", new Uint8Array(4096)),
          deflate: true,
          declaredSize: 0xfffffff0,
        }, { name: "y_train.npy", bytes: encodeNpy(new Float32Array(2), [2]) }]),
      numpy,
    ),
    {
      ...fileCase(
        "npz bit flips",
        "b.npz",
        async () => flip(await Deno.readFile(fx("formats/ctrgcn.npz")), rng, 6),
        numpy,
      ),
      mayPass: true,
    },
    fileCase(
      "npz truncated",
      "b.npz",
      async () => truncate(await Deno.readFile(fx("formats/ctrgcn.npz")), rng),
      numpy,
    ),
  ];
}

/** Hostile Kinetics-skeleton JSON. */
function casesKineticsSkeletonJson(rng: Rng): Case[] {
  return [
    folderCase(
      "kinetics Inf pose",
      "formats/kinetics",
      "kinetics_train/cliptrain01.json",
      (b) => enc(new TextDecoder().decode(b).replace(/\d\.\d+/, "1e999")),
      (d, out) => ["convert", "kinetics-json", d, "-o", out],
    ),
    folderCase(
      "kinetics huge frame_index",
      "formats/kinetics",
      "kinetics_train/cliptrain01.json",
      (b) =>
        enc(new TextDecoder().decode(b).replace(/"frame_index": \d+/, '"frame_index": 2000000000')),
      (d, out) => ["convert", "kinetics-json", d, "-o", out],
    ),
    folderCase(
      "kinetics huge label_index",
      "formats/kinetics",
      "kinetics_train_label.json",
      (b) =>
        enc(new TextDecoder().decode(b).replace('"label_index": 1', '"label_index": 2147483647')),
      (d, out) => ["convert", "kinetics-json", d, "-o", out],
    ),
    folderCase(
      "kinetics truncated",
      "formats/kinetics",
      "kinetics_train/cliptrain00.json",
      (b) => truncate(b, rng),
      (d, out) => ["convert", "kinetics-json", d, "-o", out],
    ),
  ];
}

/** Hostile OpenPose. */
function casesOpenpose(_rng: Rng): Case[] {
  return [
    folderCase(
      "openpose wrong joints",
      "formats/openpose",
      "video1/video1_000000000002_keypoints.json",
      () => enc('{"people": [{"pose_keypoints_2d": [1, 2, 3, 4, 5, 6]}]}'),
      (d, out) => ["convert", "openpose", d, "--labels", `${d}/labels.csv`, "-o", out],
    ),
    folderCase(
      "openpose Inf",
      "formats/openpose",
      "video1/video1_000000000002_keypoints.json",
      (b) => enc(new TextDecoder().decode(b).replace(/(pose_keypoints_2d": \[)[^,]+/, "$1-1e999")),
      (d, out) => ["convert", "openpose", d, "--labels", `${d}/labels.csv`, "-o", out],
    ),
    folderCase(
      "openpose unclosed quote",
      "formats/openpose",
      "labels.csv",
      () => enc('clip,label\nvideo0,"wave\n'),
      (d, out) => ["convert", "openpose", d, "--labels", `${d}/labels.csv`, "-o", out],
    ),
    folderCase(
      "openpose huge label",
      "formats/openpose",
      "labels.csv",
      () => enc("clip,label\nvideo0,0\nvideo1,99999999999\n"),
      (d, out) => ["convert", "openpose", d, "--labels", `${d}/labels.csv`, "-o", out],
    ),
  ];
}

/** Hostile NW-UCLA. */
function casesNwUcla(rng: Rng): Case[] {
  return [
    uclaCase(
      "nw-ucla Inf",
      () => enc(new TextDecoder().decode(ucla([frame(), frame()])).replace("0.5", "1e999")),
    ),
    uclaCase("nw-ucla wrong shape", () => ucla([frame().slice(0, 7), frame()])),
    uclaCase("nw-ucla truncated", () => truncate(ucla([frame(), frame(), frame()]), rng)),
    uclaCase("nw-ucla huge label", () => ucla([frame()], { label: 1e12 })),
  ];
}

/** Hostile NTU .skeleton. */
function casesNtuSkeleton(_rng: Rng): Case[] {
  return [
    ntuCase("ntu huge frame count", () => ntuText("2000000000")),
    ntuCase("ntu huge body count", () => ntuText("2", "99999999")),
    ntuCase("ntu huge joint count", () => ntuText("2", "1", "1000000000")),
    ntuCase("ntu NaN joint", () => ntuText("2", "1", "25", "nan")),
    ntuCase("ntu truncated", (r) => truncate(enc(ntuText()), r)),
  ];
}

/** Hostile layout JSON. */
function casesLayoutJson(_rng: Rng): Case[] {
  return [
    layoutCase(
      "layout 10^6 joints",
      () =>
        JSON.stringify({
          name: "huge",
          joints: Array.from({ length: 1e6 }, (_, i) => `j${i}`),
          parents: Array.from({ length: 1e6 }, (_, i) => Math.max(0, i - 1)),
        }),
    ),
    layoutCase(
      "layout cycle",
      () =>
        JSON.stringify({
          name: "cyc5",
          joints: ["a", "b", "c", "d", "e"],
          parents: [0, 2, 1, 4, 3],
        }),
    ),
    layoutCase(
      "layout index past joints",
      () =>
        JSON.stringify({
          name: "far5",
          joints: ["a", "b", "c", "d", "e"],
          limbs: [[0, 1], [1, 2], [2, 3], [3, 4000000000]],
        }),
    ),
  ];
}

/** Hostile Arrow (inspect). */
function casesArrowInspect(rng: Rng): Case[] {
  return [
    fileCase(
      "arrow truncated",
      "a.arrow",
      async () => truncate(await goodArrow(), rng),
      (f) => ["inspect", f],
    ),
    fileCase("arrow bit flips", "a.arrow", async () => {
      const b = await goodArrow();
      for (let k = 0; k < 3; k++) b[(b.length >> 2) + rng.int(b.length >> 1)] ^= 1 << rng.int(8);
      return b;
    }, (f) => ["inspect", f]),
  ];
}

/** Hostile safetensors / checkpoints (predict reads the checkpoint first). */
function casesSafetensorsCheckpointsPredict(rng: Rng): Case[] {
  return [
    fileCase(
      "safetensors huge header length",
      "m.safetensors",
      () => safetensors("{}", new Uint8Array(8), 1n << 60n),
      (f) => ["predict", f, fx("formats/stgcn/train_data_joint.npy")],
    ),
    fileCase(
      "safetensors offsets past end",
      "m.safetensors",
      () =>
        safetensors(
          JSON.stringify({
            w: { dtype: "F32", shape: [1000000000], data_offsets: [0, 4000000000] },
          }),
          new Uint8Array(16),
        ),
      (f) => ["predict", f, fx("formats/stgcn/train_data_joint.npy")],
    ),
    fileCase(
      "safetensors truncated",
      "m.safetensors",
      async () => truncate(await Deno.readFile(fx("motionbert_kp.safetensors")), rng),
      (f) => ["predict", f, fx("formats/stgcn/train_data_joint.npy")],
    ),
  ];
}

function cases(rng: Rng): Case[] {
  return [
    ...casesPysklPickles(rng),
    ...casesNumpyNpyNpz(rng),
    ...casesKineticsSkeletonJson(rng),
    ...casesOpenpose(rng),
    ...casesNwUcla(rng),
    ...casesNtuSkeleton(rng),
    ...casesLayoutJson(rng),
    ...casesArrowInspect(rng),
    ...casesSafetensorsCheckpointsPredict(rng),
  ];
}

Deno.test({
  name: "hostile: every reader refuses hostile input cheaply, in one line, leaving nothing",
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir();
    const failures: string[] = [];
    for (const c of cases(new Rng(20261206))) {
      const inDir = `${root}/${c.name.replaceAll(/\W+/g, "_")}`, outDir = `${inDir}.out`;
      await Deno.mkdir(inDir);
      await Deno.mkdir(outDir);
      const args = await c.build(inDir, `${outDir}/out.arrow`);
      let bytes = 0;
      for await (const e of Deno.readDir(inDir)) {
        bytes += e.isFile ? (await Deno.stat(`${inDir}/${e.name}`)).size : 0;
      }
      // deno's start-up, plus a second per 10 MB read
      const bound = 15 + bytes / 1e7;
      const r = await runCli(args, { timeoutMs: 2 * bound * 1000 });
      const lines = r.stderr.trim().split("\n").filter((l) => !/^warning:/.test(l));
      const named = c.names ? `${inDir}/${c.names}` : inDir;
      const left = [];
      for await (const e of Deno.readDir(outDir)) left.push(e.name);
      if (c.mayPass && r.code === 0 && left.join() === "out.arrow") continue;
      const problems = [
        r.timedOut || r.seconds > bound
          ? `took ${r.seconds.toFixed(1)} s (bound ${bound.toFixed(0)})`
          : "",
        r.peakMiB > MEMORY_MIB ? `peak ${r.peakMiB.toFixed(0)} MiB` : "",
        r.code === 1 || r.code === 2 ? "" : `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}`,
        lines.length === 1 && lines[0].startsWith("heatformer: error: ")
          ? ""
          : `${lines.length} lines`,
        lines.join(" ").includes(named) ? "" : `does not name ${named}`,
        left.length ? `left ${left.join(", ")}` : "",
      ].filter(Boolean);
      if (problems.length) {
        failures.push(`${c.name}: ${problems.join("; ")} | ${lines.join(" / ").slice(0, 300)}`);
      }
    }
    await Deno.remove(root, { recursive: true });
    assert(!failures.length, `\n${failures.join("\n")}`);
  },
});
