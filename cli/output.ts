// How every command reports: human lines on stderr/stdout, or exactly one JSON object on
// stdout with --json; errors as one line naming the problem (and the file it is about), with a
// non-zero exit code, and with --json also as {"error": {message, file, record, code}} on stdout.
import { type Located, locationOf } from "../io/errors.ts";
import { ConfigError } from "../training/preflight.ts";

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** What a shell loop gets on stdout with --json when a command fails. */
export interface ErrorObject {
  error: { message: string; file: string | null; record: string | null; code: number };
}

/** Extensions of the files heatformer reads and writes, to tell a path from a config key. */
const FILE_LIKE =
  /\.(arrow|json|jsonl|safetensors|pkl|pickle|npy|npz|png|svg|html|txt|csv|skeleton|tmp)$/;

/** Flags whose value is a file or folder ("--out run: a run is already there"). */
const FILE_FLAGS = new Set(["out", "resume", "data", "config", "labels", "classes", "missing"]);

/**
 * The file (and record) an error is about: what it carries (io/errors.ts), else a leading
 * "PATH:", "PATH:LINE:" or "PATH [RECORD]:" of its message (also after a "--flag ").
 */
export function whereOf(e: unknown): Located {
  const carried = locationOf(e);
  if (carried.file) return carried;
  const message = e instanceof Error ? e.message : String(e);
  const m = message.match(/^(?:--([\w-]+) )?([^\s:[\]]+)(?::(\d+))?(?: \[([^\]]+)\])?:(?: |$)/);
  if (!m) return carried;
  const [, flag, file, line, record] = m;
  if (!file.includes("/") && !FILE_LIKE.test(file) && !FILE_FLAGS.has(flag)) return carried;
  return {
    file,
    ...(carried.record ? { record: carried.record } : {}),
    ...(record ? { record } : line ? { record: `line ${line}` } : {}),
  };
}

/** The exit code of an error: 2 for usage and configuration errors, else 1. */
export function exitCodeOf(e: unknown): number {
  return e instanceof UsageError || e instanceof ConfigError ? EXIT.usage : EXIT.failure;
}

/** The --json form of an error. */
export function errorObject(e: unknown, code = exitCodeOf(e)): ErrorObject {
  const where = whereOf(e);
  return {
    error: {
      message: oneLine(e instanceof Error ? e.message : String(e)),
      file: where.file ?? null,
      record: where.record ?? null,
      code,
    },
  };
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, "; ");

/**
 * Runs a command body; an error is one line on stderr naming its file (and, with `o.json`, the
 * error object on stdout), then the exit code (2 for usage errors, else 1).
 */
export async function runCommand(
  body: () => Promise<void>,
  o: { json?: boolean } = {},
): Promise<void> {
  try {
    await body();
  } catch (e) {
    const obj = errorObject(e);
    const { message, file } = obj.error;
    const named = !file || message.includes(file) ? message : `${file}: ${message}`;
    console.error(`heatformer: error: ${named}`);
    if (Deno.env.get("HEATFORMER_DEBUG")) console.error((e as Error).stack);
    if (o.json) printJson(obj);
    Deno.exit(obj.error.code);
  }
}

export function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    throw new UsageError(`${flag}: a positive integer, got "${v}"`);
  }
  return n;
}

export function nonNegativeInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    throw new UsageError(`${flag}: an integer >= 0, got "${v}"`);
  }
  return n;
}

export function parseIntList(flag: string, value: string): number[] {
  const out = value.split(",").map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new UsageError(`${flag}: expected positive integers separated by commas, got "${value}"`);
  }
  return out;
}
