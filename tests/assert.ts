// Minimal assertions (Deno's std cannot be installed here: JSR is unreachable).
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

export function assertEquals<T>(actual: T, expected: T, msg = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError(`${msg ? msg + ": " : ""}expected ${e}, got ${a}`);
}

type ErrorClass<E extends Error> = new (...args: never[]) => E;

export function assertThrows<E extends Error>(fn: () => unknown, cls: ErrorClass<E>): E {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new AssertionError(
      `expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`,
    );
  }
  throw new AssertionError(`expected ${cls.name} to be thrown`);
}

export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  cls: ErrorClass<E>,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new AssertionError(
      `expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`,
    );
  }
  throw new AssertionError(`expected ${cls.name} to be rejected`);
}
