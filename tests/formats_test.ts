// The formats users bring (fixtures from tests/fixtures/make_importer_fixtures.py): each
// importer converts, inspects with its classes, splits and layout, trains a short epoch and
// predicts a held-back sample.
import { fileURLToPath } from "node:url";
import { convertNumpy } from "../data/convert_numpy.ts";
import { convertKinetics, convertOpenpose } from "../data/convert_openpose.ts";
import { inspectFile } from "../data/inspect.ts";
import { DataError, SkeletonFile } from "../data/schema.ts";
import { tiny } from "./tiny.ts";
import { train } from "../training/trainer.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { gpuTest } from "./helpers.ts";

const fx = (n: string) => fileURLToPath(new URL(`./fixtures/formats/${n}`, import.meta.url));
const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

async function summary(path: string) {
  const f = await SkeletonFile.open(path);
  try {
    const r = await inspectFile(f);
    const splits = Object.fromEntries(Object.entries(r.splits).map(([k, v]) => [k, v.samples]));
    return { r, splits, first: await f.read(0) };
  } finally {
    await f.close();
  }
}

/** One short epoch, then `predict --json` on the validation split (and on `single`
 * sequences given as they are): names and classes back. */
async function trainAndPredict(
  rt: Parameters<typeof train>[0],
  data: string,
  dir: string,
  split: string,
  input: "heatmap" | "kp2d" | "kp3d",
  single: string[] = [],
) {
  const s = await train(
    rt,
    tiny(data, `${dir}/run`, {
      data: { split },
      input: { kind: input },
      optim: { batchSize: 2 },
      run: { epochs: 1 },
    }),
    false,
  );
  assertEquals(s.epochs, 1);
  const held = split.split(":")[1];
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "predict",
      `${dir}/run`,
      data,
      ...single,
      "--split",
      held,
      "--top-k",
      "1",
      "--json",
    ],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
}

gpuTest("formats: Kinetics-skeleton JSON (ST-GCN) converts, trains and predicts", async (rt) => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/k.arrow`;
  const report = await convertKinetics(fx("kinetics"), out);
  assertEquals([report.written, report.skipped.length], [5, 0]);
  const { r, splits, first } = await summary(out);
  assertEquals([r.layout, r.channels, r.classNames], ["openpose18", 2, [
    "abseiling",
    "air drumming",
    "answering questions",
  ]]);
  assertEquals(splits, { train: 3, val: 2 });
  // 6 frames (frame 4 had nobody), the 2 most confident people of up to 3, pixels of 340 x 256
  assertEquals([first.frames, first.persons, first.imgShape], [6, 2, [256, 340]]);
  assert(first.keypoint.every((v) => v >= 0 && v <= 340), "pixel coordinates");
  const one = fx("kinetics/kinetics_val/clipval01.json");
  const preds = await trainAndPredict(rt, out, dir, "train:val", "heatmap", [one]);
  assertEquals(preds.map((p) => p.name), ["clipval00", "clipval01", "clipval01"]);
  assertEquals(preds[2].top, preds[1].top); // the JSON file alone predicts as its converted row
  assert(preds.every((p) => r.classNames.includes(p.top[0].class)), "class names predicted");
  await Deno.remove(dir, { recursive: true });
});

gpuTest(
  "formats: OpenPose clip folders with a labels CSV convert, train and predict",
  async (rt) => {
    const dir = await Deno.makeTempDir();
    const out = `${dir}/o.arrow`;
    await convertOpenpose(fx("openpose"), out, { labels: fx("openpose/labels.csv") });
    const { r, splits, first } = await summary(out);
    assertEquals([r.layout, r.classNames, splits], ["openpose25", ["jump", "wave"], {
      train: 2,
      test: 2,
    }]);
    assertEquals([first.name, first.frames, first.persons, first.label], ["video0", 5, 1, 1]);
    const preds = await trainAndPredict(rt, out, dir, "train:test", "kp2d", [
      fx("openpose/video3"),
    ]);
    assertEquals(preds.map((p) => p.name), ["video2", "video3", "video3"]);
    assertEquals(preds[2].top, preds[1].top); // the clip folder alone predicts as its row
    const e = await assertRejects(
      () => convertOpenpose(fx("openpose"), `${dir}/x.arrow`),
      DataError,
    );
    assert(e.message.includes("--labels"), e.message);
    await Deno.remove(dir, { recursive: true });
  },
);

gpuTest(
  "formats: ST-GCN .npy + label pickles and CTR-GCN .npz convert, train and predict",
  async (rt) => {
    const dir = await Deno.makeTempDir();
    const st = `${dir}/s.arrow`;
    await convertNumpy(fx("stgcn"), st, { classes: ["a", "b", "c"] });
    const s = await summary(st);
    assertEquals([s.r.layout, s.r.channels, s.splits], ["ntu25", 3, { train: 4, val: 2 }]);
    // zero padding to 20 frames cut (8 real ones); the all-zero second person dropped
    assertEquals([s.first.name, s.first.frames, s.first.persons], ["S001C001P001R001A001", 8, 1]);
    const one = `${dir}/one.arrow`;
    await convertNumpy(fx("stgcn/val_data_joint.npy"), one, {
      labels: fx("stgcn/val_label.pickle"),
      split: "val",
    });
    assertEquals((await summary(one)).splits, { val: 2 });
    const npz = `${dir}/c.arrow`;
    await convertNumpy(fx("ctrgcn.npz"), npz);
    const c = await summary(npz);
    assertEquals([c.r.layout, c.r.classes, c.splits], ["ntu25", 4, { train: 3, test: 2 }]);
    assertEquals([c.first.frames, c.first.persons, c.first.label], [10, 1, 0]);
    const preds = await trainAndPredict(rt, st, dir, "train:val", "kp3d");
    assertEquals(preds.length, 2);
    assert(preds.every((p) => ["a", "b", "c"].includes(p.top[0].class)), JSON.stringify(preds));
    await Deno.remove(dir, { recursive: true });
  },
);
