// The CLI as shell loops use it: --json output that parses, exit codes (0 ok, 1 failure,
// 2 usage), and error messages that name the file or the flag.
import { decodePng, svgTexts } from "./pictures.ts";
import { TINY } from "./tiny.ts";
import { assert, assertEquals } from "./assert.ts";
import { legacySpec } from "../cli/eval.ts";
import { layoutByName } from "../data/layouts.ts";
import { presetByName } from "../models/presets.ts";
import { cli } from "./cli.ts";

Deno.test({
  name: "cli: convert synth, inspect and render with --json; errors and exit codes",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const arrow = `${dir}/synth.arrow`;
    const conv = await cli("convert", "synth", "-o", arrow, "--subjects", "4", "--json");
    assertEquals(conv.code, 0, conv.stderr);
    const c = JSON.parse(conv.stdout);
    assertEquals(c.written, 4 * 16 * 3);
    const ins = await cli("inspect", arrow, "--json");
    assertEquals(ins.code, 0, ins.stderr);
    const r = JSON.parse(ins.stdout);
    assertEquals(r.classes, 16);
    assertEquals(Object.keys(r.splits).sort(), ["train", "val"]);
    const ren = await cli(
      "render",
      arrow,
      "--sample",
      "S001C001R001A001",
      "--clip-len",
      "8",
      "--clips",
      "2",
      "--clip",
      "1",
      "-o",
      `${dir}/v.npy`,
      "--json",
    );
    assertEquals(ren.code, 0, ren.stderr);
    assertEquals(JSON.parse(ren.stdout).shape, [1, 25, 8, 56, 56]);
    const npy = await Deno.readFile(`${dir}/v.npy`);
    assertEquals(String.fromCharCode(...npy.slice(1, 6)), "NUMPY");
    // failures: exit 1 naming the problem; usage errors: exit 2
    const missing = await cli("inspect", `${dir}/nope.arrow`);
    assertEquals(missing.code, 1);
    assert(
      missing.stderr.includes("nope.arrow") && missing.stderr.includes("cannot open"),
      missing.stderr,
    );
    const noSample = await cli("render", arrow, "--sample", "XYZ", "-o", `${dir}/x.png`);
    assertEquals(noSample.code, 1);
    assert(
      noSample.stderr.includes("[XYZ]") && noSample.stderr.includes("no sample"),
      noSample.stderr,
    );
    const badFormat = await cli("convert", "kinetics", "x", "-o", `${dir}/k.arrow`);
    assertEquals(badFormat.code, 2);
    assert(badFormat.stderr.includes('unknown format "kinetics"'), badFormat.stderr);
    const badFlag = await cli(
      "render",
      arrow,
      "--sample",
      "S001C001R001A001",
      "--size",
      "-3",
      "-o",
      `${dir}/x.png`,
    );
    assertEquals(badFlag.code, 2);
    assert(badFlag.stderr.includes("--size"), badFlag.stderr);
    const unknownCmd = await cli("frobnicate");
    assertEquals(unknownCmd.code, 2);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "cli: train --json, then eval --json with PNGs; a bad flag exits 2 naming it",
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    const arrow = `${dir}/synth.arrow`;
    assertEquals((await cli("convert", "synth", "-o", arrow, "--subjects", "3")).code, 0);
    const tr = await cli(
      "train",
      "--model",
      "vanilla-tiny",
      "--data",
      arrow,
      "--split",
      "synth",
      "--clip-len",
      "8",
      "--size",
      "16",
      "--epochs",
      "1",
      "--batch-size",
      "8",
      "--heatmap",
      "both",
      "--sigma",
      "1.5",
      "--dropout",
      "0.1",
      "--drop-path",
      "0.05",
      "--out",
      `${dir}/run`,
      "--json",
    );
    assertEquals(tr.code, 0, tr.stderr);
    const s = JSON.parse(tr.stdout); // only the summary object on stdout
    assertEquals([s.model, s.epochs], ["vanilla-tiny", 1]);
    const saved = JSON.parse(await Deno.readTextFile(`${dir}/run/config.json`));
    const built = saved.record.modelConfig;
    assertEquals([built.dropout, built.dropPath, saved.model.dropout], [0.1, 0.05, 0.1]);
    const ev = await cli("eval", `${dir}/run`, "--clips", "2", "--flip", "--json");
    assertEquals(ev.code, 0, ev.stderr);
    const e = JSON.parse(ev.stdout);
    assertEquals(e.views, 4);
    assert(e.top1 >= 0 && e.top5 >= e.top1 && e.confusion.length === 16, "metrics");
    await checkPictures(e.pictures);
    // A checkpoint alone (no run folder beside it) evaluates the same: it records its input
    // pipeline (here sigma 1.5, which the model config does not say).
    await Deno.mkdir(`${dir}/bare`);
    await Deno.copyFile(`${dir}/run/last.safetensors`, `${dir}/bare/model.safetensors`);
    const bare = await cli(
      "eval",
      `${dir}/bare/model.safetensors`,
      "--data",
      arrow,
      "--split",
      "val",
      "--clips",
      "2",
      "--flip",
      "--json",
    );
    assertEquals(bare.code, 0, bare.stderr);
    assertEquals(JSON.parse(bare.stdout).confusion, e.confusion);
    // An ensemble of a run with itself is the run.
    const twice = await cli(
      "eval",
      `${dir}/run`,
      "--ensemble",
      `${dir}/run`,
      "--clips",
      "2",
      "--flip",
      "--json",
    );
    assertEquals(twice.code, 0, twice.stderr);
    const t2 = JSON.parse(twice.stdout);
    assertEquals([t2.ensemble.length, t2.ensemble[1].top1, t2.top1], [2, e.top1, e.top1]);
    // A second run with another lr, and the report comparing both, opened in a browser
    const tr2 = await cli(
      "train",
      ...TINY,
      "--data",
      arrow,
      "--epochs",
      "1",
      "--lr",
      "0.002",
      "--out",
      `${dir}/run2`,
    );
    assertEquals(tr2.code, 0, tr2.stderr);
    await checkReportOf(t, [`${dir}/run`, `${dir}/run2`], dir);
    const bad = await cli("train", "--lr", "-1", "--out", `${dir}/bad`);
    assertEquals(bad.code, 2);
    assert(bad.stderr.includes("--lr"), bad.stderr);
    const badDrop = await cli("train", "--drop-path", "1.5", "--out", `${dir}/bad`);
    assertEquals(badDrop.code, 2);
    assert(badDrop.stderr.includes("--drop-path"), badDrop.stderr);
    const heatBones = await cli("train", "--bones", "--out", `${dir}/bad`); // heatmap input
    assertEquals(heatBones.code, 2);
    assert(heatBones.stderr.includes("--bones"), heatBones.stderr);
    const wrong = await cli("train", "--model", "nope", "--out", `${dir}/nope`);
    assert(wrong.code === 2 && wrong.stderr.includes('unknown model "nope"'), wrong.stderr);
    // Usage errors found before any model is built: exit 2, the flag named.
    const usage: [string[], string][] = [
      [["--split", "foo"], '--split: "foo"'],
      [["--heads", "7"], "model.heads (--heads): 7 does not divide the width 64"],
      [["--split", "nw-ucla"], "--split nw-ucla: "],
      [
        ["--data", arrow, "--split", "synth", "--input", "kp2d", "--model", "vivit-m1-tiny"],
        "--input",
      ],
    ];
    for (const [flags, says] of usage) {
      const r = await cli("train", ...flags, "--out", `${dir}/u`);
      assert(r.code === 2 && r.stderr.includes(says), `${flags.join(" ")}: ${r.code} ${r.stderr}`);
    }
    const noSplit = await cli("train", "--data", arrow, "--split", "a:b", "--out", `${dir}/u`);
    assert(noSplit.code === 2 && noSplit.stderr.includes("it has: train, val"), noSplit.stderr);
    const c = { optim: { lr: 0.1, learningRate: 2 } };
    await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify(c));
    const unknownKey = await cli("train", "--config", `${dir}/c.json`, "--out", `${dir}/u`);
    assert(
      unknownKey.code === 2 && unknownKey.stderr.includes("unknown key optim.learningRate"),
      unknownKey.stderr,
    );
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("train: --flip defaults to 0.5 for heatmaps and 0 for keypoints; a flag or config wins", async () => {
  const { resolveConfig } = await import("../cli/train.ts");
  const flip = async (o: Record<string, string | string[]>) =>
    (await resolveConfig(o)).experiment.augment.flip;
  assertEquals(await flip({}), 0.5);
  assertEquals(await flip({ input: "kp3d" }), 0);
  assertEquals(await flip({ input: "kp2d", flip: "0.5" }), 0.5);
  const dir = await Deno.makeTempDir();
  const c = { input: { kind: "kp3d" }, augment: { flip: 0.3 } };
  await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify(c));
  assertEquals(await flip({ config: [`${dir}/c.json`] }), 0.3);
  await Deno.writeTextFile(`${dir}/d.json`, JSON.stringify({ input: { kind: "kp3d" } }));
  assertEquals(await flip({ config: [`${dir}/d.json`] }), 0);
  // a flat (format 1) file still reads
  await Deno.writeTextFile(`${dir}/e.json`, JSON.stringify({ input: "kp3d", flip: 0.3 }));
  assertEquals(await flip({ config: [`${dir}/e.json`] }), 0.3);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("eval: a checkpoint that predates recorded inputs gets its heatmap kind from its channels", () => {
  const ntu = layoutByName("ntu25");
  const mc = (channels: number) => ({
    ...presetByName("vanilla-tiny").config,
    input: { kind: "heatmap" as const, channels, frames: 8, size: 16, persons: 2 },
  });
  const kinds = [25, 24, 49].map((c) => legacySpec(mc(c), ntu, "x.safetensors"));
  assertEquals(kinds.map((k) => [k.joints, k.limbs]), [[true, false], [false, true], [true, true]]);
  let msg = "";
  try {
    legacySpec(mc(7), ntu, "x.safetensors");
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes("x.safetensors") && msg.includes("7 heatmap channels"), msg);
});

type Picture = { svg: string; png: string };

/** The eval's charts: labelled axes, legends and class names in the SVGs; PNGs not blank. */
async function checkPictures(p: { confusion: Picture; perClass: Picture; curves: Picture }) {
  const texts = async (f: string) => svgTexts(await Deno.readTextFile(f));
  const curves = await texts(p.curves.svg);
  for (
    const t of ["epoch", "top-1 (%)", "cross-entropy loss", "learning rate", "train", "validation"]
  ) {
    assert(curves.includes(t), `curves.svg lacks "${t}": ${curves.join(" | ")}`);
  }
  const cm = await texts(p.confusion.svg);
  for (
    const t of ["predicted class", "true class", "wave right hand", "clap", "share of the row"]
  ) {
    assert(cm.includes(t), `confusion.svg lacks "${t}"`);
  }
  assert(cm.some((t) => /^confusion matrix .*top-1 \d+\.\d%$/.test(t)), "the top-1 in the title");
  const bars = await texts(p.perClass.svg);
  assert(bars.includes("top-1 (%)") && bars.includes("wave left hand"), "per-class bars");
  for (const f of [p.curves.png, p.confusion.png, p.perClass.png]) {
    const png = await decodePng(await Deno.readFile(f));
    assert(png.width > 400 && png.height > 200, `${f}: ${png.width} x ${png.height}`);
    assert(png.distinct > 20, `${f}: blank (${png.distinct} distinct bytes)`);
  }
}

/**
 * `heatformer report` of the runs: the HTML, then the page as a browser sees it, a step that
 * is ignored (counted as skipped) where no Chromium is installed.
 */
async function checkReportOf(t: Deno.TestContext, runs: string[], dir: string) {
  const out = `${dir}/report.html`;
  const r = await cli("report", ...runs, "-o", out, "--json");
  assertEquals(r.code, 0, r.stderr);
  assert(JSON.parse(r.stdout).differing.includes("optim.lr"), r.stdout);
  const html = await Deno.readTextFile(out);
  assert(!/(src|href)="https?:/.test(html) && !html.includes("<script"), "self-contained");
  assert(html.includes('<td class="diff">0.002</td>'), "the differing lr highlighted");
  const { checkReport, findChromium } = await import("../tools/check_report.ts");
  const name = "report: the page as a browser sees it (Chromium)";
  if (!findChromium()) console.log(`skipping "${name}": no Chromium installed`);
  await t.step({
    name,
    ignore: !findChromium(),
    fn: async () => {
      const c = await checkReport(out, `${dir}/report.png`);
      assert(c.ok, JSON.stringify(c));
      assertEquals(c.runRows, 2);
    },
  });
}
