// Nothing is lost unannounced: every sample a conversion drops is counted and named in its
// report (and in `--json`), a conversion that keeps nothing is an error that writes nothing,
// and labels are read as written (CSV quoting) and never invented (class lists).
import { fileURLToPath } from "node:url";
import { convertNtu } from "../data/convert.ts";
import { convertKinetics, convertOpenpose } from "../data/convert_openpose.ts";
import { DataError, SkeletonFile } from "../data/schema.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { runCli } from "./cli_run.ts";

const fx = (n: string) => fileURLToPath(new URL(`./fixtures/formats/${n}`, import.meta.url));

/** A 2-frame, 1-body NTU .skeleton text (25 joints). */
function ntuText(): string {
  const joint = "0.1 0.2 3.0 200 150 900 500 0 0 0 1 2";
  const body = `72057594037930000 0 1 1 1 1 0 0.5 0.5 2\n25\n${Array(25).fill(joint).join("\n")}`;
  return `2\n1\n${body}\n1\n${body}\n`;
}

async function ls(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("report: an NTU file of an action past the classes is counted and named", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/in`);
  for (const n of ["S001C001P001R001A011", "S001C001P001R001A099"]) {
    await Deno.writeTextFile(`${dir}/in/${n}.skeleton`, ntuText());
  }
  const r = await convertNtu(`${dir}/in`, `${dir}/out.arrow`, { classes: 60 });
  assertEquals(r.written, 1);
  assertEquals(r.skipped, [{
    name: "S001C001P001R001A099",
    reason: "action A99 is not one of the 60 classes",
  }]);
  const cli = await runCli(["convert", "ntu", `${dir}/in`, "-o", `${dir}/cli.arrow`, "--json"]);
  assertEquals(cli.code, 0);
  const j = JSON.parse(cli.stdout);
  assertEquals([j.written, j.skipped, j.skippedSamples[0].name], [1, 1, "S001C001P001R001A099"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report: a conversion that keeps no sample is an error and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/in`);
  await Deno.writeTextFile(`${dir}/in/S001C001P001R001A099.skeleton`, ntuText());
  const e = await assertRejects(
    () => convertNtu(`${dir}/in`, `${dir}/out.arrow`, { classes: 60 }),
    DataError,
  );
  assert(e.message.includes("no sample to write (1 skipped: S001C001P001R001A099"), e.message);
  assertEquals(await ls(dir), ["in"]);
  const cli = await runCli(["convert", "ntu", `${dir}/in`, "-o", `${dir}/out.arrow`]);
  assertEquals(cli.code, 1);
  assertEquals(await ls(dir), ["in"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report: OpenPose CSV fields are unquoted, and their line numbers true", async () => {
  const dir = await Deno.makeTempDir();
  await new Deno.Command("cp", { args: ["-r", `${fx("openpose")}/.`, dir] }).output();
  await Deno.writeTextFile(
    `${dir}/labels.csv`,
    'clip,label,split\r\n"video0","wave, left",train\r\nvideo1,"jump ""high""",train\r\n' +
      '"video2","wave, left",test\r\nvideo3,"jump ""high""",test\r\n',
  );
  await convertOpenpose(dir, `${dir}/out.arrow`, { labels: `${dir}/labels.csv` });
  const f = await SkeletonFile.open(`${dir}/out.arrow`);
  assertEquals(f.meta.classes, ['jump "high"', "wave, left"]);
  assertEquals(f.index.names, ["video0", "video1", "video2", "video3"]);
  await f.close();
  await Deno.writeTextFile(`${dir}/labels.csv`, 'clip,label\nvideo0,wave\n\n"video1,jump\n');
  const e = await assertRejects(
    () => convertOpenpose(dir, `${dir}/x.arrow`, { labels: `${dir}/labels.csv` }),
    DataError,
  );
  assert(e.message.includes("line 4: a quoted field is never closed"), e.message);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report: a label the class list lacks is an error naming the record", async () => {
  const dir = await Deno.makeTempDir();
  await new Deno.Command("cp", { args: ["-r", `${fx("kinetics")}/.`, dir] }).output();
  const classes = ["abseiling", "air drumming", "answering questions", "applauding", "x", "y"];
  const lf = `${dir}/kinetics_val_label.json`;
  const labels = JSON.parse(await Deno.readTextFile(lf));
  const clip = Object.keys(labels).find((k) => labels[k].has_skeleton !== false)!;
  labels[clip].label = "juggling";
  await Deno.writeTextFile(lf, JSON.stringify(labels));
  const e = await assertRejects(
    () => convertKinetics(dir, `${dir}/out.arrow`, { classes }),
    DataError,
  );
  assert(e.message.startsWith(`${lf} [${clip}]: label "juggling" is not in`), e.message);
  await Deno.remove(dir, { recursive: true });
});
