// Files written whole or not at all: the bytes go to a temporary file beside the target, then a
// rename puts it in place (atomic within a file system). A failed write removes the temporary
// file and leaves the old one as it was, and its error names the target, not the temporary.
import { located } from "./errors.ts";

export class WriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WriteError";
  }
}

/** The operating system's words in a file-system error ("No space left on device (os error
 * 28): write ..."), else the whole message. */
export function osMessage(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.match(/[A-Za-z][^()]*\(os error \d+\)(: [^)]*)?/)?.[0] ?? m;
}

/** A failed write of `path`, located at it. */
export function writeError(path: string, e: unknown): WriteError {
  return located(new WriteError(`${path}: cannot write it (${osMessage(e)})`), path);
}

/** Writes `path` through `tmp` and a rename; a failure leaves neither `tmp` nor a changed `path`. */
export async function writeAtomic(
  path: string,
  data: string | Uint8Array,
  tmp = `${path}.tmp`,
): Promise<void> {
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw writeError(path, e);
  }
}
