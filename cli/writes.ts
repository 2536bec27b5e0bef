// What a command may write. Never one of its own inputs (not even with --force), never a run
// folder's own files (only `train` writes those), and an existing file only with --force.
// Paths are compared as the file system sees them: symlinks resolved, relative paths made
// absolute. The writes themselves go through io/atomic.ts (a temporary file, then a rename).
import { basename, dirname, join, resolve } from "node:path";
import { located } from "../io/errors.ts";
import { osMessage } from "../io/atomic.ts";
import { UsageError } from "./output.ts";

/** A run folder's own files: its configuration, metrics, summary, checkpoints, events, lock. */
const RUN_FILES = [
  /^config\.json$/,
  /^metrics\.jsonl$/,
  /^summary\.json$/,
  /\.safetensors$/,
  /^events\.out\.tfevents\./,
  /^\.lock$/,
];

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** A path with its symlinks resolved; where it does not exist (yet), through its folder. */
export async function realPath(path: string, depth = 0): Promise<string> {
  const abs = resolve(path);
  try {
    return await Deno.realPath(abs);
  } catch { /* not there yet, or a dangling link */ }
  if (depth < 32) {
    const target = await Deno.readLink(abs).catch(() => null);
    if (target !== null) return realPath(resolve(dirname(abs), target), depth + 1);
  }
  const parent = dirname(abs);
  return parent === abs ? abs : join(await realPath(parent, depth + 1), basename(abs));
}

/** Whether `real` (resolved) is one of a run folder's own files. */
async function isRunFile(real: string): Promise<boolean> {
  if (!RUN_FILES.some((p) => p.test(basename(real)))) return false;
  const dir = dirname(real);
  for (const marker of ["config.json", "metrics.jsonl", "last.safetensors"]) {
    if (await exists(join(dir, marker))) return true;
  }
  return false;
}

export interface WritePlan {
  /** The files the command will write (all of them, before it writes any). */
  outputs: string[];
  /** Every file the command reads (absent ones are skipped). */
  inputs: (string | undefined)[];
  /** --force: existing outputs may be replaced (never an input, never a run's file). */
  force?: boolean;
  /** The flag that names the outputs, for the messages. */
  flag: string;
}

/**
 * Refuses a plan that would destroy data: an output that is an input (exit 2, even with
 * --force), a run folder's own file (exit 2), an existing file without --force (exit 2).
 */
export async function checkOutputs(p: WritePlan): Promise<void> {
  const inputs = new Map<string, string>();
  for (const i of p.inputs) if (i) inputs.set(await realPath(i), i);
  for (const out of p.outputs) {
    const real = await realPath(out);
    const input = inputs.get(real);
    if (input !== undefined) {
      throw located(
        new UsageError(
          `${out}: ${p.flag} would replace the input ${input}; write to another file ` +
            "(--force never replaces an input)",
        ),
        out,
      );
    }
    if (await isRunFile(real)) {
      throw located(
        new UsageError(
          `${out}: ${p.flag} would replace the ${basename(real)} of the run in ${
            dirname(out)
          }; a run's own files are written only by train (choose another file)`,
        ),
        out,
      );
    }
    if (!p.force && await exists(out)) {
      throw located(
        new UsageError(
          `${out}: already exists; add --force to replace it, or choose another ${p.flag}`,
        ),
        out,
      );
    }
  }
}

/**
 * Checks that `path` can be written before any work is done: its folder exists and takes a new
 * file. A failure names the output (exit 1), never the input being read.
 */
export async function checkWritable(path: string): Promise<void> {
  const dir = dirname(resolve(path));
  const st = await Deno.stat(dir).catch(() => null);
  if (!st?.isDirectory) {
    throw located(
      new Error(`${path}: cannot write it (its folder ${dirname(path)} does not exist)`),
      path,
    );
  }
  try {
    const probe = await Deno.makeTempFile({ dir, prefix: `.${basename(path)}.`, suffix: ".probe" });
    await Deno.remove(probe);
  } catch (e) {
    throw located(new Error(`${path}: cannot write it (${osMessage(e)})`), path);
  }
}
