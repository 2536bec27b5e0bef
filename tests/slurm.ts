// A real one-node Slurm cluster for the sweep tests: MUNGE and Debian's slurmctld / slurmd
// (Slurm 22.05) started as child processes with a generated slurm.conf for this host (no
// cgroups, no accounting), stopped at the end. Where Slurm is not installed the tests are
// skipped (`slurmMissing` says why); .ci/run installs slurm-wlm and munge.
import { hostname } from "node:os";

export interface Cluster {
  /** Environment for Slurm's clients (SLURM_CONF). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

const dec = new TextDecoder();

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  try {
    const o = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
    return { ok: o.success, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** MUNGE with a key of its own: returns the daemon to stop, or a reason it cannot run. */
async function startMunge(
  dir: string,
): Promise<{ socket: string; proc: Deno.ChildProcess } | string> {
  const key = `${dir}/munge.key`;
  await Deno.writeFile(key, crypto.getRandomValues(new Uint8Array(1024)), { mode: 0o400 });
  const socket = `${dir}/munge.socket`;
  let proc: Deno.ChildProcess;
  try {
    proc = new Deno.Command("munged", {
      args: [
        "--foreground",
        "--force",
        `--key-file=${key}`,
        `--socket=${socket}`,
        `--pid-file=${dir}/munged.pid`,
        `--log-file=${dir}/munged.log`,
        `--seed-file=${dir}/munged.seed`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (e) {
    return `munged: ${(e as Error).message}`;
  }
  for (let i = 0; i < 50; i++) {
    if (await Deno.stat(socket).then(() => true, () => false)) return { socket, proc };
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill("SIGKILL");
  return `munged did not start (${await Deno.readTextFile(`${dir}/munged.log`).catch(() => "")})`;
}

function slurmConf(dir: string, socket: string): string {
  const host = hostname().split(".")[0];
  return [
    "ClusterName=heatformer-test",
    `SlurmctldHost=${host}`,
    "SlurmUser=root",
    "SlurmdUser=root",
    "AuthType=auth/munge",
    `AuthInfo=socket=${socket}`,
    "CredType=cred/munge",
    `SlurmctldPort=${freePort()}`,
    `SlurmdPort=${freePort()}`,
    `StateSaveLocation=${dir}/state`,
    `SlurmdSpoolDir=${dir}/spool`,
    `SlurmctldPidFile=${dir}/slurmctld.pid`,
    `SlurmdPidFile=${dir}/slurmd.pid`,
    `SlurmctldLogFile=${dir}/slurmctld.log`,
    `SlurmdLogFile=${dir}/slurmd.log`,
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "JobAcctGatherType=jobacct_gather/none",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_Core",
    "ReturnToService=2",
    "MpiDefault=none",
    "KillWait=30",
    `NodeName=${host} CPUs=2 RealMemory=8000 State=UNKNOWN`,
    `PartitionName=test Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
    "",
  ].join("\n");
}

const TOOLS = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol"];

/** Why Slurm cannot run here ("" when it is installed): a test with it is skipped, saying so. */
export async function slurmMissing(): Promise<string> {
  for (const tool of TOOLS) {
    if (!(await run("which", [tool])).ok) {
      return `${tool} is not installed (apt-get install slurm-wlm munge)`;
    }
  }
  return "";
}

/** Starts the cluster; throws, saying why, when it does not come up. */
export async function startSlurm(): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ prefix: "hf-slurm-" });
  await Deno.mkdir(`${dir}/state`);
  await Deno.mkdir(`${dir}/spool`);
  const munge = await startMunge(dir);
  if (typeof munge === "string") throw new Error(munge);
  const conf = `${dir}/slurm.conf`;
  await Deno.writeTextFile(conf, slurmConf(dir, munge.socket));
  const env = { SLURM_CONF: conf };
  const daemon = (cmd: string) =>
    new Deno.Command(cmd, { args: ["-D", "-f", conf], env, stdout: "null", stderr: "null" })
      .spawn();
  const ctld = daemon("slurmctld");
  await new Promise((r) => setTimeout(r, 1000));
  const slurmd = daemon("slurmd");
  const stop = async () => {
    for (const p of [slurmd, ctld, munge.proc]) {
      try {
        p.kill("SIGTERM");
      } catch { /* gone */ }
      await p.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  for (let i = 0; i < 100; i++) {
    const s = await run("sinfo", ["-h", "-o", "%t"], env);
    if (s.ok && /idle|mix|alloc/.test(s.out)) return { env, stop };
    await new Promise((r) => setTimeout(r, 200));
  }
  const log = await Deno.readTextFile(`${dir}/slurmctld.log`).catch(() => "");
  await stop();
  throw new Error(`the one-node Slurm did not come up (${log.split("\n").slice(-3).join(" | ")})`);
}
