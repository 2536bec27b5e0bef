// Sweeps: a plan is the product of the axes (or rows x axes) with stable folder names; the
// job-array script asks for requeue and the time-limit warning; on a real one-node Slurm, a
// sweep of 4 tiny runs with one task preempted mid-run ends with every run done, the preempted
// one bit-identical to the same run uninterrupted (`--local 1`), and the same table.
import { readSafetensors } from "../io/safetensors.ts";
import { readSweepRecord } from "../sweep/folder.ts";
import { slurmScript } from "../sweep/slurm.ts";
import { planSweep } from "../sweep/spec.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { slurmMissing, startSlurm } from "./slurm.ts";

const noSlurm = await slurmMissing();
if (noSlurm) console.log(`skipping the Slurm sweep test: ${noSlurm}`);
import { finished, runCli, spawnCli } from "./cli.ts";

const dec = new TextDecoder();
const hf = (args: string[], env: Record<string, string> = {}) => runCli(args, { env });

/** The tiny sweep of the issue: 2 models x 2 seeds on the built-in data, 2 epochs. */
const TINY_SWEEP = {
  name: "tiny",
  flags: "--clip-len 8 --size 16 --batch-size 8 --test-clips 1 --no-flip-test --epochs 2",
  axes: { model: ["vanilla-tiny", "motionbert-tiny"], seed: [1, 2] },
};

Deno.test("sweep plan: axes multiply, rows x axes, stable names, paths as axes, errors", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/s.json`;
  await Deno.writeTextFile(file, JSON.stringify(TINY_SWEEP));
  const plan = await planSweep(file, `${dir}/out`);
  assertEquals(plan.runs.map((r) => r.name), [
    "model-vanilla-tiny_seed-1",
    "model-vanilla-tiny_seed-2",
    "model-motionbert-tiny_seed-1",
    "model-motionbert-tiny_seed-2",
  ]);
  const e = plan.runs[3].experiment;
  assertEquals([e.model.family, e.run.seed, e.run.epochs, e.input.clipLen], [
    "motionbert",
    2,
    2,
    8,
  ]);
  assertEquals(e.run.out, `${dir}/out/runs/model-motionbert-tiny_seed-2`);
  // explicit rows (a study table) x seeds, an experiment path as an axis, a base file
  await Deno.writeTextFile(`${dir}/base.json`, '{ "run": { "epochs": 3 } }');
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      base: "base.json",
      rows: [{ model: "vanilla-tiny", input: "kp2d" }, { model: "vivit-m1-tiny" }],
      axes: { "optim.lr": [1e-3, 3e-4] },
    }),
  );
  const rows = await planSweep(file, `${dir}/out2`);
  assertEquals(rows.runs.length, 4);
  assertEquals(rows.runs[1].name, "model-vanilla-tiny_input-kp2d_optim.lr-0.0003");
  assertEquals([rows.runs[1].experiment.optim.lr, rows.runs[1].experiment.run.epochs], [3e-4, 3]);
  await Deno.writeTextFile(file, JSON.stringify({ axes: { learningRate: [1] } }));
  const bad = await assertRejects(() => planSweep(file), Error);
  assert(bad.message.includes('axis "learningRate"'), bad.message);
  await Deno.writeTextFile(
    file,
    JSON.stringify({ axes: { model: ["vivit-m1-tiny"], input: ["kp3d"] } }),
  );
  const invalid = await assertRejects(() => planSweep(file), Error);
  assert(
    invalid.message.includes("run model-vivit-m1-tiny_input-kp3d: input.kind"),
    invalid.message,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sweep --slurm: the job-array script requeues, warns before the limit, execs the task", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/s.json`, JSON.stringify(TINY_SWEEP));
  const plan = await planSweep(`${dir}/s.json`, `${dir}/out`);
  const record = { name: plan.name, runs: plan.runs } as unknown as Parameters<
    typeof slurmScript
  >[1];
  const script = slurmScript(`${dir}/out`, record, [0, 2, 3], {
    gres: "gpu:1",
    time: "24:00:00",
    partition: "gpu",
    extra: ["--constraint=a100"],
    parallel: 2,
  });
  for (
    const line of [
      "#SBATCH --array=0,2,3%2",
      "#SBATCH --requeue",
      "#SBATCH --signal=B:USR1@120",
      "#SBATCH --gres=gpu:1",
      "#SBATCH --time=24:00:00",
      "#SBATCH --partition=gpu",
      "#SBATCH --constraint=a100",
    ]
  ) assert(script.includes(line), `${line}\n${script}`);
  assert(/\nexec .* sweep task .*out "\$SLURM_ARRAY_TASK_ID"\n/.test(script), script);
  await Deno.remove(dir, { recursive: true });
});

async function sweepStatus(dir: string, env: Record<string, string>) {
  const r = await hf(["sweep", "status", dir, "--json"], env);
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as {
    counts: Record<string, number>;
    runs: { name: string; state: string; resumed: number; attempts: number }[];
  };
}

async function until(what: string, seconds: number, ok: () => Promise<boolean>): Promise<void> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > seconds * 1000) throw new Error(`timed out after ${seconds} s: ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function sameTensors(a: string, b: string): Promise<void> {
  const [x, y] = [await readSafetensors(a), await readSafetensors(b)];
  assertEquals([...x.tensors.keys()].sort(), [...y.tensors.keys()].sort());
  for (const [k, t] of x.tensors) {
    const u = y.tensors.get(k)!;
    const i = t.data.findIndex((v, j) => !Object.is(v, u.data[j]));
    assert(i < 0, `${k}[${i}]: ${t.data[i]} vs ${u.data[i]}`);
  }
}

Deno.test({
  name:
    "sweep on a one-node Slurm: tasks preempted and warned, requeued, all done; the same as --local 1 stopped and resumed",
  ignore: noSlurm !== "",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await startSlurm();
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/tiny.json`, JSON.stringify(TINY_SWEEP));
      const env = cluster.env;
      const run = (out: string, ...how: string[]) =>
        hf(["sweep", "run", `${dir}/tiny.json`, "--out", `${dir}/${out}`, ...how], env);
      const sub = await run("slurm", "--slurm", "--signal", "0", "--json");
      assertEquals(sub.code, 0, sub.stderr);
      const jobId = JSON.parse(sub.stdout).submitted as string;
      // preempt motionbert seed 1 (index 2) as Slurm's preemption does (SIGTERM, requeue), and
      // warn motionbert seed 2 (index 3) of its time limit (SIGUSR1: it requeues itself), each
      // once its first epoch is written
      const firstEpoch = (name: string) =>
        until(
          `${name}'s first epoch`,
          300,
          async () =>
            (await Deno.readTextFile(`${dir}/slurm/runs/${name}/metrics.jsonl`).catch(() => ""))
              .trim().length > 0,
        );
      const slurm = async (cmd: string, ...args: string[]) => {
        const o = await new Deno.Command(cmd, { args, env }).output();
        assert(o.success, `${cmd}: ${dec.decode(o.stderr)}`);
      };
      const [preempted, warned] = ["model-motionbert-tiny_seed-1", "model-motionbert-tiny_seed-2"];
      await firstEpoch(preempted);
      await slurm("scontrol", "requeue", `${jobId}_2`);
      await firstEpoch(warned);
      await slurm("scancel", "--signal=USR1", "--batch", `${jobId}_3`);
      await until(
        "every run done",
        600,
        async () => (await sweepStatus(`${dir}/slurm`, env)).counts.done === 4,
      );
      const st = await sweepStatus(`${dir}/slurm`, env);
      for (const [name, signal] of [[preempted, "SIGTERM"], [warned, "SIGUSR1"]]) {
        const v = st.runs.find((r) => r.name === name)!;
        const tasks = JSON.parse(await Deno.readTextFile(`${dir}/slurm/tasks/${name}.json`));
        assert(v.resumed >= 1 && v.attempts >= 2, JSON.stringify(v));
        assertEquals(tasks[0].signal, signal, JSON.stringify(tasks));
      }
      // the same sweep here, one run at a time, stopped (Ctrl-C) during its second run and
      // resumed: the same weights as on Slurm
      const local = spawnCli([
        "sweep",
        "run",
        `${dir}/tiny.json`,
        "--out",
        `${dir}/local`,
        "--local",
        "1",
      ]);
      await until(
        "the local second run's first epoch",
        300,
        async () =>
          (await Deno.readTextFile(`${dir}/local/runs/model-vanilla-tiny_seed-2/metrics.jsonl`)
            .catch(() => "")).trim().length > 0,
      );
      local.kill("SIGINT");
      assertEquals((await finished(local)).code, 130);
      const resumed = await hf(["sweep", "resume", `${dir}/local`, "--local", "1"]);
      assertEquals(resumed.code, 0, resumed.stderr);
      for (const r of (await readSweepRecord(`${dir}/local`)).runs) {
        await sameTensors(
          `${dir}/slurm/runs/${r.name}/last.safetensors`,
          `${dir}/local/runs/${r.name}/last.safetensors`,
        );
      }
      const [a, b] = [
        await hf(["sweep", "report", `${dir}/slurm`, "--json"]),
        await hf(["sweep", "report", `${dir}/local`, "--json"]),
      ];
      const rowsA = JSON.parse(a.stdout).rows, rowsB = JSON.parse(b.stdout).rows;
      assertEquals(rowsA.length, 2);
      assertEquals(
        rowsA.map((r: { top1: unknown }) => r.top1),
        rowsB.map((r: { top1: unknown }) => r.top1),
      );
      const md = await Deno.readTextFile(`${dir}/slurm/report.md`);
      assert(md.includes("vanilla-tiny") && md.includes("±"), md);
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
