// One experiment, one value: the schema's leaves each have a flag, unknown keys and bad values
// are refused by path, config files layer in order, --print-config round-trips, every preset x
// recipe x input resolves as it did before the nested experiment (values recorded then), and
// run folders written before it (flat config.json) still evaluate and resume.
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { addExperimentOptions, flagName, flagsLayer } from "../cli/flags.ts";
import { configText } from "../cli/print_config.ts";
import type { SkeletonFile } from "../data/schema.ts";
import {
  effectiveLr,
  type Experiment,
  getLeaf,
  type Layer,
  LEAVES,
  validateLayer,
} from "../training/experiment.ts";
import { readConfigLayer, readRunConfig } from "../training/experiment_file.ts";
import { FLAT_PATHS } from "../training/migrate.ts";
import { resolveExperiment } from "../training/resolve.ts";
import { train } from "../training/trainer.ts";
import { modelConfigFor } from "../training/setup.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { gpuTest } from "./helpers.ts";
import { tiny, tinyData } from "./tiny.ts";
import { cli } from "./cli.ts";

const FIXTURES = fileURLToPath(new URL("./fixtures/configs/", import.meta.url));

const resolveFlags = (flags: Layer, file: Layer = {}) =>
  resolveExperiment([{ origin: "config", layer: file }, { origin: "flag", layer: flags }]);

/** Commander's parse of train flags, as the CLI gets them. */
function parseFlags(args: string[]): Record<string, string | string[] | boolean | undefined> {
  const cmd = addExperimentOptions(new Command().exitOverride());
  cmd.parse(args, { from: "user" });
  return cmd.opts();
}

/** A value of a leaf as flag text. */
const flagText = (v: unknown) => Array.isArray(v) ? v.join(",") : v === null ? "none" : String(v);

Deno.test("experiment: every leaf has its own flag, and the flag sets that leaf", () => {
  const names = LEAVES.map(flagName);
  assertEquals(new Set(names).size, LEAVES.length, names.join(" "));
  // a value other than the default for each leaf, given as its flag, lands at its path
  const e = resolveFlags({ model: { preset: "vivit-m2-tiny" }, run: { recipe: "posec3d" } })
    .experiment;
  for (const leaf of LEAVES) {
    const v = getLeaf(e, leaf.path);
    const args = leaf.kind === "boolean"
      ? [v ? `--${flagName(leaf)}` : `--no-${flagName(leaf)}`]
      : [`--${flagName(leaf)}`, flagText(v)];
    const layer = flagsLayer(parseFlags(args));
    assertEquals(getLeaf(layer, leaf.path), v, `${args.join(" ")} -> ${leaf.path}`);
  }
  // --set reaches any leaf by path, after the flags
  const set = flagsLayer(
    parseFlags(["--lr", "0.1", "--set", "optim.lr=3e-4", "--set", "model.tubelet=2,4,4"]),
  );
  assertEquals([set.optim?.lr, set.model?.tubelet], [3e-4, [2, 4, 4]]);
  const unknown = assertThrows(() => flagsLayer(parseFlags(["--set", "optim.lrr=1"])), Error);
  assert(unknown.message.includes('unknown path "optim.lrr"'), unknown.message);
  const notNumber = assertThrows(() => flagsLayer(parseFlags(["--lr", "fast"])), Error);
  assert(notNumber.message.startsWith('--lr: "fast" is not a number'), notNumber.message);
});

Deno.test("experiment: unknown keys and bad values are refused, naming the path", () => {
  const msg = (raw: unknown) => assertThrows(() => validateLayer(raw), Error).message;
  assert(msg({ optim: { lrr: 1 } }).includes("unknown key optim.lrr"), msg({ optim: { lrr: 1 } }));
  assert(msg({ optimiser: {} }).includes("unknown key optimiser"), msg({ optimiser: {} }));
  assert(msg({ optim: { lr: 0 } }).startsWith("optim.lr:"), msg({ optim: { lr: 0 } }));
  const across = assertThrows(() => resolveFlags({ model: { heads: 5 } }), Error).message;
  assert(across.startsWith("model.heads: 5 does not divide the width 64"), across);
  const family = assertThrows(
    () => resolveFlags({ model: { preset: "vivit-m1-tiny" }, input: { kind: "kp3d" } }),
    Error,
  ).message;
  assert(family.startsWith("input.kind: vivit-m1 takes heatmap"), family);
});

Deno.test("experiment: config files layer in order (JSON with comments), flags over them", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/a.json`,
    '// the base\n{ "model": { "preset": "motionbert-tiny" }, "optim": { "lr": 0.01, }, }',
  );
  await Deno.writeTextFile(`${dir}/b.json`, '{ "optim": { "lr": 0.02, "weightDecay": 0 } }');
  const flags = parseFlags([
    "--config",
    `${dir}/a.json`,
    "--config",
    `${dir}/b.json`,
    "--seed",
    "7",
  ]);
  const { userLayers } = await import("../cli/train.ts");
  const { experiment: e, origins } = resolveExperiment(await userLayers(flags));
  assertEquals([e.model.family, e.optim.lr, e.optim.weightDecay, e.run.seed], [
    "motionbert",
    0.02,
    0,
    7,
  ]);
  assertEquals([origins["model.preset"], origins["optim.lr"], origins["run.seed"]], [
    `config ${dir}/a.json`,
    `config ${dir}/b.json`,
    "flag",
  ]);
  await Deno.writeTextFile(`${dir}/c.json`, '{ "optim": { "lr": 0.02 ');
  const broken = await readConfigLayer(`${dir}/c.json`).then(() => "", (x) => x.message);
  assert(broken.startsWith(`${dir}/c.json:1:`), broken);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("experiment: --print-config round-trips (print, load, print: the same experiment)", async () => {
  const dir = await Deno.makeTempDir();
  const flags = ["train", "--model", "motionbert-tiny", "--input", "kp2d", "--lr", "3e-4"];
  const r = await cli(...flags, "--print-config");
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.includes('"lr": 0.0003, // flag'), r.stdout);
  assert(r.stdout.includes('"clips": 1, // input kp2d'), r.stdout);
  await Deno.writeTextFile(`${dir}/printed.jsonc`, r.stdout);
  const again = await cli("train", "--config", `${dir}/printed.jsonc`, "--print-config", "--json");
  assertEquals(again.code, 0, again.stderr);
  const first = await cli(...flags, "--print-config", "--json");
  assertEquals(JSON.parse(again.stdout).experiment, JSON.parse(first.stdout).experiment);
  // every leaf is printed with an origin
  const origins = JSON.parse(first.stdout).origins as Record<string, string>;
  assertEquals(LEAVES.filter((l) => !origins[l.path]).map((l) => l.path), []);
  const text = configText(JSON.parse(first.stdout).experiment as Experiment, origins);
  assertEquals(text.split("\n").filter((l) => l.includes("//")).length, LEAVES.length);
  await Deno.remove(dir, { recursive: true });
});

/** A value with its object keys sorted (the comparison ignores key order). */
const sorted = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(sorted) : v && typeof v === "object"
    ? Object.fromEntries(
      Object.entries(v).sort(([a], [b]) => a < b ? -1 : 1).map(([k, x]) => [k, sorted(x)]),
    )
    : v;

/** A stand-in data file of 17 COCO joints and 60 classes (as when the table was recorded). */
const COCO60 = {
  meta: { layout: "coco17", classes: Array.from({ length: 60 }, (_, i) => `c${i}`) },
} as unknown as SkeletonFile;

Deno.test("experiment: every preset x recipe x input resolves to the values recorded before", async () => {
  // recorded with the flat RunConfig's resolveLayers and modelConfigFor (commit 2d1ff46)
  const rows = JSON.parse(await Deno.readTextFile(`${FIXTURES}/resolution_v1.json`)) as {
    preset: string;
    recipe: string;
    input: "heatmap" | "kp2d" | "kp3d";
    run: Record<string, unknown>;
    model: unknown;
  }[];
  assert(rows.length >= 100, `${rows.length} rows`);
  for (const row of rows) {
    const where = `${row.preset} x ${row.recipe} x ${row.input}`;
    const { experiment: e } = resolveFlags({
      model: { preset: row.preset },
      run: { recipe: row.recipe },
      input: { kind: row.input },
    });
    for (const [field, value] of Object.entries(row.run)) {
      if (field === "out" || field === "lr") continue;
      assertEquals(getLeaf(e, FLAT_PATHS[field]), value, `${where}: ${field}`);
    }
    assertEquals(effectiveLr(e), row.run.lr, `${where}: lr`);
    assertEquals(sorted(modelConfigFor(e, COCO60)), sorted(row.model), `${where}: model`);
  }
});

Deno.test("experiment: flat (format 1) run configs migrate, the model as it was built", async () => {
  const old = await Deno.makeTempDir();
  await Deno.copyFile(`${FIXTURES}/v1-vivit-m2.json`, `${old}/config.json`);
  const { experiment: e, format, record } = await readRunConfig(old);
  assertEquals(format, 1);
  // its --depth 2 set every depth; posec3d's lr was scaled to its batch of 8 when it ran
  assertEquals([e.model.depth, e.model.spatialDepth, e.model.temporalDepth], [2, 2, 2]);
  assertEquals([e.optim.lr, e.optim.lrBatch, effectiveLr(e)], [0.0125, 0, 0.0125]);
  assertEquals([e.run.recipe, e.eval.checkpoint, e.run.out], [
    "posec3d",
    "last",
    "/tmp/oldruns/vivit-m2",
  ]);
  assertEquals((record.modelConfig as { family: string }).family, "vivit-m2");
  // a run from before the final-checkpoint choice evaluated its best epoch
  const raw = JSON.parse(await Deno.readTextFile(`${FIXTURES}/v1-vanilla.json`));
  delete raw.finalCheckpoint, delete raw.evalEvery, delete raw.sampling;
  await Deno.writeTextFile(`${old}/config.json`, JSON.stringify(raw));
  const older = (await readRunConfig(old)).experiment;
  assertEquals([older.eval.checkpoint, older.eval.every, older.input.sampling], [
    "best",
    1,
    "uniform",
  ]);
  // as a --config file its folder is not inherited
  assertEquals((await readConfigLayer(`${old}/config.json`)).run?.out, undefined);
  await Deno.remove(old, { recursive: true });
});

gpuTest("experiment: a run folder with a flat config.json evaluates and resumes", async (rt) => {
  const dir = await Deno.makeTempDir();
  const data = await tinyData(dir);
  const run = `${dir}/run`;
  await train(rt, tiny(data, run, { run: { epochs: 1 }, optim: { lr: 0.002 } }), false);
  // the committed flat config of the same model (vanilla-tiny, 8 frames of 16 x 16, lr 0.002)
  const flat = JSON.parse(await Deno.readTextFile(`${FIXTURES}/v1-vanilla.json`));
  await Deno.writeTextFile(
    `${run}/config.json`,
    JSON.stringify({ ...flat, data, out: run, dataFile: data, testClips: 1, flipTest: false }),
  );
  const ev = await cli("eval", run, "--json");
  assertEquals(ev.code, 0, ev.stderr);
  assertEquals(JSON.parse(ev.stdout).samples, 16);
  const resumed = await cli("train", "--resume", run, "--epochs", "2", "--json");
  assertEquals(resumed.code, 0, resumed.stderr);
  assertEquals(JSON.parse(resumed.stdout).epochs, 2);
  // the resumed run's config.json is format 2, its extension recorded
  const now = JSON.parse(await Deno.readTextFile(`${run}/config.json`));
  assertEquals([now.format, now.run.epochs, now.record.extended], ["heatformer-experiment/2", 2, [
    { from: 1, to: 2, at: 1 },
  ]]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("experiment: every committed config file resolves (NW-UCLA's streams layered on joint)", async () => {
  const root = fileURLToPath(new URL("../configs/", import.meta.url));
  const files: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(`${d}${e.name}/`);
      else if (e.name.endsWith(".json")) files.push(`${d}${e.name}`);
    }
  };
  await walk(root);
  assert(files.length >= 20, `${files.length} config files`);
  const base = (f: string) =>
    f.includes("/nw-ucla/") && !f.endsWith("joint.json") ? [`${root}nw-ucla/joint.json`] : [];
  for (const f of files) {
    if (f.endsWith("ntu60-table1.json") || f.includes("/sweeps/")) {
      // a sweep (the study's rows x seeds; the CPU presets; Penn Action's small-data rows):
      // every run resolves
      const { planSweep } = await import("../sweep/spec.ts");
      const runs = (await planSweep(f)).runs.length;
      const want: Record<string, number> = {
        "ntu60-table1": 39,
        "penn-pretrained": 10,
        "penn-pretrained-seeds": 8,
      };
      assertEquals(runs, want[f.split("/").pop()!.replace(".json", "")] ?? 8, f);
      continue;
    }
    const layers = [];
    for (const g of [...base(f), f]) layers.push({ origin: g, layer: await readConfigLayer(g) });
    const { experiment: e } = resolveExperiment(layers);
    if (f.includes("/study/")) assertEquals(e.data.split, "ntu60-xsub", f);
  }
  const quick = resolveExperiment([{
    origin: "q",
    layer: await readConfigLayer(`${root}quickstart.json`),
  }]);
  assertEquals([quick.experiment.model.preset, quick.experiment.run.epochs], ["vanilla-tiny", 35]);
});
