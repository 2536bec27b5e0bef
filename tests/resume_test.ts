// Runs a researcher can trust: resume semantics, damaged checkpoints, kills at any point
// (failpoints and SIGKILL), failed starts, Ctrl-C, and run folders that work from anywhere.
// Tiny shapes (8 frames of 16 x 16, batches of 8) shared with train_test.ts.
import { fileURLToPath } from "node:url";
import { readSafetensors } from "../io/safetensors.ts";
import { withRunFolder } from "../training/experiment.ts";
import { ConfigError } from "../training/preflight.ts";
import { train } from "../training/trainer.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { scalarLines } from "./tfevents_reader.ts";
import { TINY, tiny, tinyData, tinyTest } from "./tiny.ts";
import { runCli as cli } from "./cli.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

const metricsEpochs = async (run: string) =>
  (await Deno.readTextFile(`${run}/metrics.jsonl`)).trim().split("\n").filter(Boolean)
    .map((l) => JSON.parse(l).epoch);

async function assertSameWeights(a: string, b: string): Promise<void> {
  const [x, y] = [await readSafetensors(a), await readSafetensors(b)];
  assertEquals([...x.tensors.keys()].sort(), [...y.tensors.keys()].sort());
  for (const [k, t] of x.tensors) {
    const u = y.tensors.get(k)!;
    const i = (t.data as Float32Array).findIndex((v, j) => !Object.is(v, u.data[j]));
    assert(i < 0, `${k}[${i}]: ${t.data[i]} vs ${u.data[i]}`);
  }
}

Deno.test("resume: only --epochs may change; other flags are refused by name (#14.1)", async () => {
  const { resolveConfig } = await import("../cli/train.ts");
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/config.json`,
    // a flat (format 1) run record, migrated on read
    JSON.stringify({ model: "vanilla-tiny", recipe: "cpu", out: dir, epochs: 4, lr: 0.001 }),
  );
  const e = await assertRejects(() => resolveConfig({ resume: dir, epochs: "5", lr: "5" }), Error);
  assert(e.message.startsWith("--lr:") && e.message.includes("only --epochs"), e.message);
  const shorter = await assertRejects(() => resolveConfig({ resume: dir, epochs: "3" }), Error);
  assert(shorter.message.startsWith("--epochs:"), shorter.message);
  const same = await resolveConfig({ resume: dir, lr: "0.001", epochs: "6" }); // unchanged lr
  const e2 = same.experiment;
  assertEquals([same.resume, e2.run.epochs, e2.optim.lr, e2.run.out], [true, 6, 0.001, dir]);
  await Deno.remove(dir, { recursive: true });
});

tinyTest(
  "resume: a finished run is left untouched; --epochs extends it (#14.1)",
  async (rt, { dir, data, run }) => {
    await train(rt, tiny(data, run, { run: { epochs: 1 } }), false);
    const summary = await Deno.readTextFile(`${run}/summary.json`);
    const { trainCommand } = await import("../cli/train.ts");
    const log = console.log;
    let said = "";
    console.log = (s: string) => (said += s);
    try {
      await trainCommand({ resume: run }); // finished: says so, touches nothing
    } finally {
      console.log = log;
    }
    assert(said.includes("finished"), said);
    assertEquals(await Deno.readTextFile(`${run}/summary.json`), summary);
    const { resolveConfig } = await import("../cli/train.ts");
    const { experiment } = await resolveConfig({ resume: run, epochs: "2" });
    const s = await train(rt, withRunFolder(experiment), true);
    assertEquals([s.epochs, s.interrupted], [2, false]);
    assertEquals(await metricsEpochs(run), [1, 2]);
    const saved = JSON.parse(await Deno.readTextFile(`${run}/config.json`));
    assertEquals([saved.run.epochs, saved.record.extended], [2, [{ from: 1, to: 2, at: 1 }]]);
    await Deno.remove(dir, { recursive: true });
  },
);

tinyTest(
  "run folders: new runs never overwrite, failed starts leave nothing, eval works from anywhere (#14.2, #14.5)",
  async (rt, { data, run }) => {
    // A start that fails before its first step (a batch larger than the data) leaves no folder.
    await assertRejects(
      () => train(rt, tiny(data, run, { optim: { batchSize: 4096 } }), false),
      ConfigError,
    );
    assert(!(await Deno.stat(run).catch(() => null)), "no folder left by a failed start");
    await train(rt, tiny(data, run, { run: { epochs: 1 } }), false);
    const again = await assertRejects(() => train(rt, tiny(data, run), false), ConfigError);
    assert(again.message.includes("--force"), again.message);
    // Evaluated from another working directory, with no --data or --split: the run's config
    // and the bare checkpoint both record the absolute data path and the protocol.
    const elsewhere = await Deno.makeTempDir();
    const ev = await cli(["eval", run, "--json"], { cwd: elsewhere });
    assertEquals(ev.code, 0, ev.stderr);
    await Deno.copyFile(`${run}/last.safetensors`, `${elsewhere}/model.safetensors`);
    const bare = await cli(["eval", "model.safetensors", "--json"], { cwd: elsewhere });
    assertEquals(bare.code, 0, bare.stderr);
    assertEquals(JSON.parse(bare.stdout).confusion, JSON.parse(ev.stdout).confusion);
    const badSplit = await cli(["eval", "model.safetensors", "--split", "test"], {
      cwd: elsewhere,
    });
    assert(badSplit.code === 1 && badSplit.stderr.includes("train, val"), badSplit.stderr);
    await Deno.remove(elsewhere, { recursive: true });
  },
);

tinyTest(
  "checkpoints: a crash before the first epoch ends is resumable; damaged files fall back (#14.3, #14.8)",
  async (rt, { data, run }) => {
    // A crash at the first step: the checkpoint written before it makes the run resumable.
    let calls = 0;
    await assertRejects(
      () =>
        train(rt, tiny(data, run), false, {
          progress: () => {
            if (++calls === 1) throw new Error("crash");
          },
        }),
      Error,
    );
    const first = await readSafetensors(`${run}/last.safetensors`);
    assertEquals(JSON.parse(first.metadata.position).epoch, 0);
    const s = await train(rt, tiny(data, run), true);
    assertEquals([s.epochs, await metricsEpochs(run)], [2, [1, 2]]);
    // A truncated last.safetensors: resuming says it is damaged and takes last-1 instead.
    const bytes = await Deno.readFile(`${run}/last.safetensors`);
    await Deno.writeFile(`${run}/last.safetensors`, bytes.subarray(0, bytes.length - 100));
    const lines: string[] = [];
    const r = await train(rt, tiny(data, run, { run: { epochs: 2 } }), true, {
      log: (l) => lines.push(l),
    });
    assert(
      lines.some((l) => l.includes("last.safetensors: damaged checkpoint") && l.includes("last-1")),
      lines.join("\n"),
    );
    assertEquals([r.epochs, await metricsEpochs(run)], [2, [1, 2]]); // epoch 2 again, once
    // Both damaged: a clear error naming both files.
    for (const f of ["last", "last-1"]) {
      const b = await Deno.readFile(`${run}/${f}.safetensors`);
      b[b.length - 5] ^= 0xff; // a flipped bit in the data: the checksum catches it
      await Deno.writeFile(`${run}/${f}.safetensors`, b);
    }
    const e = await assertRejects(
      () => train(rt, tiny(data, run, { run: { epochs: 3 } }), true),
      Error,
    );
    assert(
      e.message.includes("no usable checkpoint") && e.message.includes("last-1.safetensors") &&
        e.message.includes("checksum"),
      e.message,
    );
  },
);

tinyTest(
  "crash consistency: SIGKILL anywhere, resumed each time, gives the uninterrupted run (#14.4)",
  async (rt, { dir, data }) => {
    const o = { run: { epochs: 3 } };
    await train(rt, tiny(data, `${dir}/a`, o), false);
    const b = `${dir}/b`;
    const args = [...TINY, "--data", data, "--epochs", "3", "--warmup-epochs", "0"];
    // Kills inside a step, after a metrics line (before its checkpoint), with a checkpoint's
    // temporary file written, between the rotation of last to last-1 and the new last, and
    // one from outside at a random moment.
    const points = ["step:3", "metrics:1", "checkpoint-written:2", "checkpoint-rotated:2"];
    let started = false;
    for (const point of points) {
      const r = await cli(
        started ? ["train", "--resume", b] : ["train", ...args, "--out", b],
        { env: { HEATFORMER_FAILPOINT: point } },
      );
      assert(r.code === 137, `${point}: the process was killed (${r.code}) ${r.stderr}`);
      started = true;
    }
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "train", "--resume", b],
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* it finished first */ }
    }, 2500 + Math.floor(Math.random() * 2000));
    await child.status;
    clearTimeout(timer);
    const last = await cli(["train", "--resume", b, "--json"]);
    assertEquals(last.code, 0, last.stderr);
    const summary = JSON.parse(last.stdout);
    if (!summary.finished) assertEquals([summary.epochs, summary.interrupted], [3, false]);
    assertEquals(await metricsEpochs(b), [1, 2, 3]);
    const saved = JSON.parse(await Deno.readTextFile(`${b}/summary.json`));
    assertEquals([saved.epochs, saved.interrupted], [3, false]);
    await assertSameWeights(`${dir}/a/last.safetensors`, `${b}/last.safetensors`);
    // five kills and resumes, and the event file shows the uninterrupted run's curves
    assertEquals(await scalarLines(b), await scalarLines(`${dir}/a`));
  },
);

Deno.test({
  name: "ctrl-c: saves and exits within seconds, skipping the final evaluation (#14.6)",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const data = await tinyData(dir);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "train",
        ...TINY,
        "--data",
        data,
        "--epochs",
        "50",
        "--out",
        `${dir}/r`,
        "--json",
      ],
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Wait for the first epoch's line, then interrupt.
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let err = "";
    while (!err.includes("epoch 1/50")) {
      const { value, done } = await reader.read();
      if (done) break;
      err += value;
    }
    const t0 = performance.now();
    child.kill("SIGINT");
    const [status, out] = await Promise.all([child.status, new Response(child.stdout).text()]);
    reader.cancel();
    const seconds = (performance.now() - t0) / 1000;
    assertEquals(status.code, 130);
    assert(seconds < 5, `exited ${seconds.toFixed(1)} s after Ctrl-C`);
    const s = JSON.parse(out);
    assertEquals([s.interrupted, s.final], [true, null]);
    assert(s.epochs >= 1 && s.epochs < 50, `epochs ${s.epochs}`);
  },
});
