// Nothing mixed: a run folder belongs to one process (a second one with the same --out exits 2
// naming the holder; a killed holder's lock is taken over), a resume refuses a checkpoint of
// another run, and a torn metrics line is dropped while a damaged one is named.
import { hostname } from "node:os";
import { RunLock } from "../training/run_lock.ts";
import { train } from "../training/trainer.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { TINY, tiny, tinyData, tinyTest } from "./tiny.ts";
import { finished, spawnCli } from "./cli.ts";

async function waitFor(path: string, seconds: number): Promise<void> {
  for (let t = 0; t < seconds * 10; t++) {
    if (await Deno.stat(path).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${path} did not appear in ${seconds} s`);
}

Deno.test("run lock: a live holder is named; a dead one's lock is taken over", async () => {
  const dir = await Deno.makeTempDir();
  const held = await RunLock.acquire(dir);
  const e = await assertRejects(() => RunLock.acquire(dir), Error);
  assert(e.message.includes(`in use by process ${Deno.pid} on ${hostname()}`), e.message);
  held.release();
  // a process that has exited: its lock is stale
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  await Deno.writeTextFile(
    `${dir}/.lock`,
    JSON.stringify({ pid: gone.pid, host: hostname(), since: "", at: "earlier" }),
  );
  const said: string[] = [];
  const taken = await RunLock.acquire(dir, (l) => said.push(l));
  assert(said.join().includes(`stale lock of process ${gone.pid}`), said.join());
  taken.release();
  assertEquals(await Deno.stat(`${dir}/.lock`).then(() => true, () => false), false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "run lock: two trainings into one --out: one runs, the other exits 2; kill -9, taken over",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const data = await tinyData(dir);
    const out = `${dir}/run`;
    const flags = [...TINY, "--data", data, "--out", out];
    const first = spawnCli(["train", ...flags, "--epochs", "200"]);
    await waitFor(`${out}/.lock`, 120);
    const second = await finished(spawnCli(["train", ...flags, "--epochs", "1"]));
    assertEquals(second.code, 2, second.stderr);
    assert(second.stderr.includes(`in use by process ${first.pid}`), second.stderr);
    first.kill("SIGKILL");
    await finished(first);
    // the dead holder's folder: replaced with --force, the stale lock taken over with a message
    const third = await finished(spawnCli(["train", ...flags, "--epochs", "1", "--force"]));
    assertEquals(third.code, 0, third.stderr);
    assert(third.stderr.includes(`stale lock of process ${first.pid}`), third.stderr);
    assertEquals(await Deno.stat(`${out}/.lock`).then(() => true, () => false), false);
  },
});

tinyTest(
  "resume: a checkpoint copied in from another run is refused, naming both",
  async (rt, { dir, data }) => {
    await train(rt, tiny(data, `${dir}/a`, { run: { epochs: 1 } }), false);
    await train(rt, tiny(data, `${dir}/b`, { run: { epochs: 1, seed: 2 } }), false);
    const idOf = async (run: string) =>
      JSON.parse(await Deno.readTextFile(`${run}/config.json`)).record.runId as string;
    const [a, b] = [await idOf(`${dir}/a`), await idOf(`${dir}/b`)];
    assert(a && b && a !== b, `${a} ${b}`);
    // every metrics line names its run
    const line = JSON.parse((await Deno.readTextFile(`${dir}/a/metrics.jsonl`)).split("\n")[0]);
    assertEquals(line.runId, a);
    await Deno.copyFile(`${dir}/b/last.safetensors`, `${dir}/a/last.safetensors`);
    const e = await assertRejects(
      () => train(rt, tiny(data, `${dir}/a`, { run: { epochs: 2 } }), true),
      Error,
    );
    assert(e.message.includes(`run ${b}`) && e.message.includes(`run ${a}`), e.message);
    await Deno.remove(dir, { recursive: true });
  },
);

tinyTest(
  "metrics.jsonl: a torn last line is dropped on resume; a damaged one is named",
  async (rt, { dir, data, run }) => {
    await train(rt, tiny(data, run, { run: { epochs: 1 } }), false);
    const metrics = `${run}/metrics.jsonl`;
    const good = await Deno.readTextFile(metrics);
    await Deno.writeTextFile(metrics, good + '{"epoch": 2, "trainLo', { append: false });
    const said: string[] = [];
    const s = await train(rt, tiny(data, run, { run: { epochs: 2 } }), true, {
      log: (l) => said.push(l),
    });
    assertEquals(s.epochs, 2);
    assert(said.some((l) => l.includes("dropped a torn last line")), said.join("\n"));
    const epochs = (await Deno.readTextFile(metrics)).trim().split("\n").map((l) =>
      JSON.parse(l).epoch
    );
    assertEquals(epochs, [1, 2]);
    // a damaged line that is not the last: report names the file and the line
    const lines = (await Deno.readTextFile(metrics)).split("\n");
    await Deno.writeTextFile(metrics, ["{oops", ...lines.slice(1)].join("\n"));
    const out = await finished(spawnCli(["report", run, "-o", `${dir}/r.html`]));
    assertEquals(out.code, 1, out.stderr);
    assert(out.stderr.includes(`${metrics}:1: damaged metrics record`), out.stderr);
  },
);
