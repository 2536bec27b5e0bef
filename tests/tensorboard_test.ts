// TensorBoard event files read back by an independent reader (tests/tfevents_reader.ts):
// framing and CRCs, tags, values and steps against metrics.jsonl, the hyper-parameters.
import { crc32c, maskedCrc } from "../io/tfevents.ts";
import { train } from "../training/trainer.ts";
import { assert, assertEquals } from "./assert.ts";
import { decodeFields, readEventFile } from "./tfevents_reader.ts";
import { tiny, tinyTest } from "./tiny.ts";

Deno.test("CRC-32C: the standard check value, and TFRecord's mask", () => {
  const digits = new TextEncoder().encode("123456789");
  assertEquals(crc32c(digits), 0xe3069283);
  assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720's 32 zero bytes
  const c = 0xe3069283;
  assertEquals(maskedCrc(digits), ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0);
});

tinyTest(
  "a run's event file: hparams, loss per interval, epoch scalars and test, as in metrics.jsonl",
  async (rt, { data, run }) => {
    const summary = await train(rt, tiny(data, run), false);
    const name = [...Deno.readDirSync(run)].find((e) => e.name.startsWith("events.out.tfevents."));
    assert(name, "an event file in the run folder");
    const events = await readEventFile(`${run}/${name.name}`);
    assertEquals(events[0].fileVersion, "brain.Event:2");
    // hparams: a session start naming the model, and a session end with status 1 (success)
    const start = events.flatMap((e) => e.plugins).find((p) =>
      p.tag.endsWith("session_start_info")
    );
    assert(start && start.plugin === "hparams", "hparams session start");
    const info = decodeFields(decodeFields(start.content).find((f) => f.no === 3)!.bytes!);
    const keys = info.filter((f) => f.no === 1).map((f) =>
      new TextDecoder().decode(decodeFields(f.bytes!).find((x) => x.no === 1)!.bytes)
    );
    assert(
      ["model", "recipe", "lr", "batch_size", "input"].every((k) => keys.includes(k)),
      `${keys}`,
    );
    assert(new TextDecoder().decode(start.content).includes("vanilla-tiny"), "the model's name");
    const end = events.flatMap((e) => e.plugins).find((p) => p.tag.endsWith("session_end_info"));
    assert(end, "hparams session end");
    const status = decodeFields(decodeFields(end.content).find((f) => f.no === 4)!.bytes!)[0];
    assertEquals(Number(status.int), 1);
    // per epoch: the scalars of metrics.jsonl at the epoch's last step
    const metrics = (await Deno.readTextFile(`${run}/metrics.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l));
    const at = (tag: string) =>
      events.flatMap((e) => e.scalars.filter((s) => s.tag === tag).map((s) => [e.step, s.value]));
    const steps = at("train/loss").map(([s]) => s);
    assertEquals(steps.length, 2);
    const perEpoch = steps[0];
    assertEquals(steps, [perEpoch, 2 * perEpoch]);
    for (const tag of ["train/loss", "train/top1", "val/top1", "lr"]) {
      const key = {
        "train/loss": "trainLoss",
        "train/top1": "trainAccuracy",
        "val/top1": "valAccuracy",
        lr: "lr",
      }[tag]!;
      assertEquals(at(tag).map(([, v]) => v), metrics.map((m) => Math.fround(m[key])), tag);
    }
    // the loss per interval: increasing steps within each epoch, averaging to the epoch's loss
    const curve = at("train/loss_step");
    assertEquals(curve.length, metrics.reduce((a, m) => a + m.lossCurve.length, 0));
    assert(curve.every(([s], i) => i === 0 || s > curve[i - 1][0]), "steps increase");
    for (const m of metrics) {
      const k = m.lossCurve.length, mean = m.lossCurve.reduce((a: number, b: number) => a + b) / k;
      // equal intervals here (one step each), so the plain mean is the epoch's mean loss
      assert(
        Math.abs(mean - m.trainLoss) < 1e-4 * Math.max(1, m.trainLoss),
        `${mean} vs ${m.trainLoss}`,
      );
    }
    assertEquals(at("test/top1").map(([s, v]) => [s, v]), [[
      2 * perEpoch,
      Math.fround(summary.final!.top1),
    ]]);
  },
);
