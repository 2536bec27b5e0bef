// Nothing lost, nothing mixed: no command replaces what it did not create without --force, none
// ever replaces its own input or a run folder's files, a failed write leaves the old file and no
// temporary one, every failure is one line naming its file (and with --json an error object on
// stdout), and a resume clears the temporary files of interrupted writes.
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { Linear } from "../layers/basic.ts";
import { Rng } from "../layers/init.ts";
import { saveCheckpoint } from "../io/checkpoint.ts";
import { whereOf } from "../cli/output.ts";
import { encodeNpy } from "../io/png.ts";
import { train } from "../training/trainer.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { gpuTest } from "./helpers.ts";
import { TINY, tiny, tinyData } from "./tiny.ts";
import { cli } from "./cli.ts";

const PYSKL = fileURLToPath(new URL("./fixtures/pyskl2d_p4.pickle", import.meta.url));
const SAMPLE = "S001C001R001A001";

const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);
const bytes = (p: string) => Deno.readFile(p);

/** A refusal: exit 2, one stderr line naming `file` and saying `says`. */
function refused(r: { code: number; stderr: string }, file: string, says: string) {
  assertEquals(r.code, 2, r.stderr);
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("heatformer: error: "));
  assertEquals(lines.length, 1, r.stderr);
  assert(lines[0].includes(file) && lines[0].includes(says), r.stderr);
}

/** The --json error object of a failed command: its fields, the exit code among them. */
function errorOf(r: { code: number; stdout: string; stderr: string }) {
  assert(r.code !== 0, `expected a failure: ${r.stdout}`);
  const e = JSON.parse(r.stdout).error;
  assert(e, `no error object on stdout: ${r.stdout} ${r.stderr}`);
  assertEquals(Object.keys(e).sort(), ["code", "file", "message", "record"]);
  assertEquals(e.code, r.code);
  return e as { message: string; file: string | null; record: string | null; code: number };
}

/** A folder this process cannot write into (a read-only folder; root writes anywhere but /sys). */
async function unwritableDir(dir: string): Promise<string> {
  await Deno.mkdir(`${dir}/ro`);
  await Deno.chmod(`${dir}/ro`, 0o555);
  const ok = await Deno.writeTextFile(`${dir}/ro/probe`, "").then(() => true, () => false);
  return ok ? "/sys" : `${dir}/ro`;
}

Deno.test("errors: the file and record of a message that names them", () => {
  const at = (m: string) => whereOf(new Error(m));
  assertEquals(at("/d/metrics.jsonl:3: damaged metrics record"), {
    file: "/d/metrics.jsonl",
    record: "line 3",
  });
  assertEquals(at("a.pkl [S001A002]: label 49 is outside"), { file: "a.pkl", record: "S001A002" });
  assertEquals(at("--resume /r/run: no run there"), { file: "/r/run" });
  assertEquals(at("--out run: a run is already there"), { file: "run" });
  assertEquals(at("--split foo: no such split"), {});
  assertEquals(at("model.heads (--heads): 7 does not divide"), {});
  assertEquals(at('--split: "foo"'), {});
  assertEquals(at("linear: input features must equal"), {});
});

Deno.test({
  name: "convert and render: --force to replace an output, never an input; output errors name it",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const arrow = `${dir}/s.arrow`;
    assertEquals((await cli("convert", "synth", "-o", arrow, "--subjects", "2")).code, 0);
    const before = await bytes(arrow);
    refused(await cli("convert", "synth", "-o", arrow, "--subjects", "3"), arrow, "--force");
    assertEquals(await bytes(arrow), before);
    const forced = await cli("convert", "synth", "-o", arrow, "--subjects", "3", "--force");
    assertEquals(forced.code, 0, forced.stderr);
    // the input as the output (a pickle named .arrow), directly or through a symlink: refused
    // even with --force, the input untouched
    const input = `${dir}/p.arrow`;
    await Deno.copyFile(PYSKL, input);
    await Deno.symlink(input, `${dir}/link.arrow`);
    for (const out of [input, `${dir}/link.arrow`, `${dir}/../${basename(dir)}/p.arrow`]) {
      refused(await cli("convert", "pyskl", input, "-o", out, "--force"), out, "input");
    }
    assertEquals(await bytes(input), await bytes(PYSKL));
    // an output that cannot be written is named (not the input, not "malformed"), exit 1
    const noDir = await cli("convert", "pyskl", input, "-o", `${dir}/no/x.arrow`, "--json");
    const e1 = errorOf(noDir);
    assertEquals([e1.code, e1.file], [1, `${dir}/no/x.arrow`]);
    assert(!noDir.stderr.includes("malformed") && noDir.stderr.includes("x.arrow"), noDir.stderr);
    const ro = await unwritableDir(dir);
    const e2 = errorOf(await cli("convert", "pyskl", input, "-o", `${ro}/x.arrow`, "--json"));
    assertEquals([e2.code, e2.file], [1, `${ro}/x.arrow`]);
    assert(!e2.message.includes("malformed"), e2.message);
    // render: .npy, and .png with its .svg; the input itself never
    const render = (out: string, ...more: string[]) =>
      cli(
        "render",
        arrow,
        "--sample",
        SAMPLE,
        "--clip-len",
        "8",
        "--clips",
        "2",
        "-o",
        out,
        ...more,
      );
    assertEquals((await render(`${dir}/v.npy`)).code, 0);
    refused(await render(`${dir}/v.npy`), `${dir}/v.npy`, "--force");
    assertEquals((await render(`${dir}/v.npy`, "--force")).code, 0);
    await Deno.writeTextFile(`${dir}/sheet.svg`, "mine");
    refused(await render(`${dir}/sheet.png`), `${dir}/sheet.svg`, "--force");
    assertEquals(await Deno.readTextFile(`${dir}/sheet.svg`), "mine");
    const sheet = await render(`${dir}/sheet.png`, "--force", "--json");
    assertEquals([sheet.code, JSON.parse(sheet.stdout).path], [0, `${dir}/sheet.png`]);
    assert((await Deno.readTextFile(`${dir}/sheet.svg`)).startsWith("<svg"), "the sheet's SVG");
    const asNpy = `${dir}/data.npy`; // an Arrow file under a .npy name: its own output
    await Deno.copyFile(arrow, asNpy);
    const self = await cli("render", asNpy, "--sample", SAMPLE, "-o", asNpy, "--force");
    refused(self, asNpy, "input");
    assertEquals(await bytes(asNpy), await bytes(arrow));
    const clip = await cli(
      "render",
      arrow,
      "--sample",
      SAMPLE,
      "--clip",
      "-1",
      "-o",
      `${dir}/c.npy`,
    );
    refused(clip, "--clip", '"-1"');
    assertEquals(await tmpFilesIn(dir), []); // no temporary or probe file left
    await Deno.chmod(`${dir}/ro`, 0o755);
    await Deno.remove(dir, { recursive: true });
  },
});

async function tmpFilesIn(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) if (/tmp|probe/.test(e.name)) out.push(e.name);
  return out;
}

Deno.test({
  name: "report and eval: --force outside the run, a run's files never; --json error objects",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const data = await tinyData(dir);
    const run = `${dir}/run`;
    const tr = await cli("train", ...TINY, "--data", data, "--epochs", "1", "--out", run);
    assertEquals(tr.code, 0, tr.stderr);
    const config = await bytes(`${run}/config.json`);
    // report: over a run's configuration (its input) or checkpoint, never; elsewhere --force
    refused(
      await cli("report", run, "-o", `${run}/config.json`, "--force"),
      "config.json",
      "input",
    );
    refused(await cli("report", run, "-o", `${run}/best.safetensors`, "--force"), "best", "run");
    assertEquals(await bytes(`${run}/config.json`), config);
    const html = `${dir}/r.html`;
    assertEquals((await cli("report", run, "-o", html)).code, 0);
    refused(await cli("report", run, "-o", html), html, "--force");
    assertEquals((await cli("report", run, "-o", html, "--force")).code, 0);
    // a write that fails (a full disk: the temporary file is /dev/full) names the output and
    // leaves neither the file nor its temporary
    await Deno.symlink("/dev/full", `${dir}/full.html.tmp`);
    const full = await cli("report", run, "-o", `${dir}/full.html`, "--json");
    const e = errorOf(full);
    assertEquals([e.code, e.file], [1, `${dir}/full.html`]);
    assert(e.message.includes("(os error 28)"), e.message);
    assertEquals([await exists(`${dir}/full.html`), await exists(`${dir}/full.html.tmp`)], [
      false,
      false,
    ]);
    // eval's charts: in the run folder, replaced by each eval; elsewhere only with --force
    for (let i = 0; i < 2; i++) assertEquals((await cli("eval", run)).code, 0);
    const charts = `${dir}/charts`;
    assertEquals((await cli("eval", run, "--out", charts)).code, 0);
    refused(await cli("eval", run, "--out", charts), `${charts}/confusion.svg`, "--force");
    assertEquals((await cli("eval", run, "--out", charts, "--force")).code, 0);
    // data of another layout with the model's class count: a layout error (2), not a crash (1)
    const other = await coco17Data(dir, 16);
    const layout = errorOf(await cli("eval", run, "--data", other, "--split", "val", "--json"));
    assertEquals([layout.code, layout.file], [2, other]);
    assert(layout.message.includes("layout coco17"), layout.message);
    // usage errors: ours and commander's
    const demo = errorOf(await cli("demo", "--epochs", "-1", "--json"));
    assertEquals([demo.code, demo.file], [2, null]);
    assert(demo.message.includes("--epochs") && demo.message.includes("-1"), demo.message);
    assertEquals(errorOf(await cli("inspect", data, "--nope", "--json")).code, 2);
    // a bad input: exit 1, the file and the line named
    const lines = (await Deno.readTextFile(`${run}/metrics.jsonl`)).split("\n");
    await Deno.writeTextFile(`${run}/metrics.jsonl`, ["{oops", ...lines].join("\n"));
    const damaged = errorOf(await cli("report", run, "-o", `${dir}/d.html`, "--json"));
    assertEquals([damaged.code, damaged.file, damaged.record], [
      1,
      `${run}/metrics.jsonl`,
      "line 1",
    ]);
    await Deno.remove(dir, { recursive: true });
  },
});

/** A 16-class validation file of coco17 keypoints (another layout than the synthetic ntu25). */
async function coco17Data(dir: string, classes: number): Promise<string> {
  const [N, C, T, V, M] = [4, 3, 12, 17, 1];
  const x = new Float32Array(N * C * T * V * M).map((_, i) => ((i * 7919) % 100) / 100 + 0.1);
  await Deno.writeFile(`${dir}/coco.npy`, encodeNpy(x, [N, C, T, V, M]));
  await Deno.writeFile(`${dir}/coco_labels.npy`, encodeNpy(new Float32Array([0, 1, 2, 3]), [N]));
  const names = Array.from({ length: classes }, (_, k) => `class ${k}`).join("\n");
  await Deno.writeTextFile(`${dir}/classes.txt`, names);
  const out = `${dir}/coco.arrow`;
  const r = await cli(
    "convert",
    "numpy",
    `${dir}/coco.npy`,
    "--labels",
    `${dir}/coco_labels.npy`,
    "--layout",
    "coco17",
    "--classes",
    `${dir}/classes.txt`,
    "--split",
    "val",
    "-o",
    out,
  );
  assertEquals(r.code, 0, r.stderr);
  return out;
}

gpuTest(
  "checkpoint: a write that fails (disk full) leaves the old file and no temporary",
  async (rt) => {
    const dir = await Deno.makeTempDir();
    const model = new Linear(rt, 4, 3, new Rng(1));
    const path = `${dir}/m.safetensors`;
    await saveCheckpoint(rt, path, model, undefined, {});
    const before = await bytes(path);
    await Deno.symlink("/dev/full", `${path}.tmp`);
    const e = await assertRejects(() => saveCheckpoint(rt, path, model, undefined, {}), Error);
    assert(e.message.startsWith(`${path}: `) && e.message.includes("os error 28"), e.message);
    assertEquals(await exists(`${path}.tmp`), false);
    assertEquals(await bytes(path), before);
    await Deno.remove(dir, { recursive: true });
  },
);

gpuTest("resume: removes the run's stale temporary files (only its own), saying so", async (rt) => {
  const dir = await Deno.makeTempDir();
  const data = await tinyData(dir);
  const run = `${dir}/run`;
  await train(rt, tiny(data, run, { run: { epochs: 1 } }), false);
  const stale = [
    "last.safetensors.tmp",
    "best.safetensors.tmp",
    "config.json.tmp",
    "metrics.jsonl.tmp",
    "summary.json.tmp",
    "events.out.tfevents.1.host.heatformer.tmp",
  ];
  const half = (await bytes(`${run}/last.safetensors`)).slice(0, 1000); // a torn write
  for (const f of stale) await Deno.writeFile(`${run}/${f}`, half);
  await Deno.writeTextFile(`${run}/notes.tmp`, "mine"); // not the run's: kept
  const said: string[] = [];
  const s = await train(rt, tiny(data, run, { run: { epochs: 2 } }), true, {
    log: (l) => said.push(l),
  });
  assertEquals(s.epochs, 2);
  const removed = said.find((l) => l.includes("temporary file"));
  assert(removed && stale.every((f) => removed.includes(f)), said.join("\n"));
  for (const f of stale) assertEquals(await exists(`${run}/${f}`), false, f);
  assertEquals(await Deno.readTextFile(`${run}/notes.tmp`), "mine");
  await Deno.remove(dir, { recursive: true });
});
