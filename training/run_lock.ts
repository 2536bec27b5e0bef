// A run folder belongs to one process: `RUN/.lock` is created exclusively (O_EXCL) and holds
// the owner's pid, host and start. It is removed when the run ends; the lock of a process that
// died (kill -9, a lost node) is found stale by its pid on the same host and taken over with a
// message. A lock held by a live process, or by another host (whose processes this one cannot
// see), is a usage error naming the holder.
import { hostname } from "node:os";
import { join } from "node:path";
import { ConfigError } from "./experiment.ts";

export const LOCK_FILE = ".lock";

export interface LockOwner {
  pid: number;
  host: string;
  /** The process's start time (Linux: /proc/PID/stat field 22), against pid reuse. */
  since: string;
  /** ISO time the lock was taken. */
  at: string;
}

/** The start time of a process, "" where unknown (not Linux, or gone). */
function processStart(pid: number): string {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // fields after the command name (which may hold spaces) in parentheses
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

/** Whether the owner is a running process on this host (its pid alive with the same start). */
function ownerAlive(o: LockOwner): boolean {
  if (o.host !== hostname()) return true; // cannot tell: assume it runs
  try {
    Deno.statSync(`/proc/${o.pid}`);
  } catch {
    if (Deno.build.os === "linux") return false;
    return true;
  }
  return !o.since || processStart(o.pid) === o.since;
}

function describe(o: LockOwner): string {
  return `process ${o.pid} on ${o.host} (since ${o.at})`;
}

export class RunLock {
  // a Deno.exit (a second Ctrl-C) skips finally blocks but not the unload event
  readonly #onUnload = () => this.release();

  private constructor(readonly path: string, readonly owner: LockOwner) {
    globalThis.addEventListener("unload", this.#onUnload);
  }

  /**
   * Takes the folder's lock, taking over a stale one (`log` says so); throws a ConfigError
   * naming the holder when a live process has it.
   */
  static async acquire(dir: string, log: (line: string) => void = () => {}): Promise<RunLock> {
    const path = join(dir, LOCK_FILE);
    const owner: LockOwner = {
      pid: Deno.pid,
      host: hostname(),
      since: processStart(Deno.pid),
      at: new Date().toISOString(),
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const f = await Deno.open(path, { write: true, createNew: true });
        await f.write(new TextEncoder().encode(JSON.stringify(owner) + "\n"));
        f.close();
        return new RunLock(path, owner);
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      const held = await readOwner(path);
      // an unreadable lock younger than a few seconds may be one being written right now
      const young = !held &&
        Date.now() - ((await Deno.stat(path).catch(() => null))?.mtime?.getTime() ?? 0) < 5000;
      if (young) throw new ConfigError(`${dir}: the run folder is being locked by another process`);
      if (held && ownerAlive(held)) {
        throw new ConfigError(
          `${dir}: the run folder is in use by ${describe(held)}; wait for it, or choose ` +
            `another --out (if that process is gone, remove ${path})`,
        );
      }
      log(
        `${dir}: taking over the stale lock of ${held ? describe(held) : "an unreadable owner"}` +
          " (no longer running)",
      );
      await Deno.remove(path).catch(() => {});
    }
    throw new ConfigError(`${dir}: another process took the run folder's lock first`);
  }

  /** Gives the folder back (only a lock that is still ours is removed). */
  release(): void {
    globalThis.removeEventListener("unload", this.#onUnload);
    try {
      const now = JSON.parse(Deno.readTextFileSync(this.path)) as LockOwner;
      if (now.pid === this.owner.pid && now.at === this.owner.at) Deno.removeSync(this.path);
    } catch { /* gone already (the folder was removed) */ }
  }
}

/** The live process holding a run folder's lock, or null (no lock, or a dead holder's). */
export async function lockHolder(dir: string): Promise<LockOwner | null> {
  const owner = await readOwner(join(dir, LOCK_FILE));
  return owner && ownerAlive(owner) ? owner : null;
}

async function readOwner(path: string): Promise<LockOwner | null> {
  try {
    const o = JSON.parse(await Deno.readTextFile(path));
    return typeof o?.pid === "number" && typeof o?.host === "string" ? o as LockOwner : null;
  } catch {
    return null;
  }
}
