// The CLI as a subprocess, as a user or a shell loop runs it: `deno run -A main.ts ARGS`.
import { fileURLToPath } from "node:url";

export const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface CommandOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** "piped" to write the command's stdin (default: ours) */
  stdin?: "piped" | "inherit";
}

function command(args: string[], o: CommandOptions) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: o.cwd,
    stdin: o.stdin,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1", ...o.env },
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs `heatformer ARGS` to the end. */
export async function runCli(
  args: string[],
  o: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const out = await command(args, o).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `cli("train", "--lr", "1")`: runCli with the arguments spread. */
export const cli = (...args: string[]): Promise<CliResult> => runCli(args);

/** Starts `heatformer ARGS` without waiting (to signal or race it, or to feed its stdin). */
export function spawnCli(
  args: string[],
  env: Record<string, string> = {},
  stdin?: "piped",
): Deno.ChildProcess {
  return command(args, { env, stdin }).spawn();
}

/** A spawned command's end, decoded. */
export async function finished(p: Deno.ChildProcess): Promise<CliResult> {
  const o = await p.output();
  const dec = new TextDecoder();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}
