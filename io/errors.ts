// Where an error is: the file it is about (the input for a bad record, the output for a write
// failure) and the record in it (a sample name, a line, a key, a batch). Any error may carry
// them; `--json` reports them (cli/output.ts), and the message names them too.
export interface Located {
  file?: string;
  record?: string;
}

/** Attaches the file (and record) an error is about; returns the same error. */
export function located<E extends Error>(e: E, file: string, record?: string): E & Located {
  const l = e as E & Located;
  l.file ??= file;
  if (record !== undefined) l.record ??= record;
  return l;
}

/** The file and record an error carries, if any. */
export function locationOf(e: unknown): Located {
  if (!e || typeof e !== "object") return {};
  const { file, record } = e as Located;
  return {
    ...(typeof file === "string" ? { file } : {}),
    ...(typeof record === "string" ? { record } : {}),
  };
}
