// How every command reports: human lines on stderr/stdout, or exactly one JSON object on
// stdout with --json; errors as one line naming the problem, with a non-zero exit code.
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

/** Runs a command body; maps errors to a message and exit code (2 for usage errors). */
export async function runCommand(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    const err = e as Error;
    console.error(`heatformer: error: ${err.message}`);
    if (Deno.env.get("HEATFORMER_DEBUG")) console.error(err.stack);
    Deno.exit(err instanceof UsageError || err instanceof ConfigError ? EXIT.usage : EXIT.failure);
  }
}

export function parseIntList(flag: string, value: string): number[] {
  const out = value.split(",").map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new UsageError(`${flag}: expected positive integers separated by commas, got "${value}"`);
  }
  return out;
}
