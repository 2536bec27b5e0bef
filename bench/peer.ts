// The TypeScript peers (TensorFlow.js, jax-js) as a child process. bench/peers/ is a project of
// its own, with its own deno.json and deno.lock, because `deno task` installs every npm package
// of the root deno.json and deno.lock before it runs any task: a peer listed there would be
// downloaded by a newcomer's first `deno task train` (about 65 packages, 300 MB) too.

/** One matmul size timed in a peer. */
export interface PeerResult {
  name: string;
  kernel: string;
  shape: number[];
  gflops: number;
  ms: number;
}

/** The reference training step timed in a peer. */
export interface PeerTime {
  name: string;
  msPerStep: number;
}

/** What bench/peers/main.ts is asked to time, and what it answers. */
export type PeerRequest =
  | { peer: "tfjs-matmul"; sizes: number[]; minMs: number }
  | { peer: "tfjs-train" }
  | { peer: "jaxjs-train"; device: "wasm" | "webgpu"; jit: boolean };
export interface PeerAnswers {
  "tfjs-matmul": PeerResult[];
  "tfjs-train": PeerTime;
  "jaxjs-train": PeerTime;
}
/** The child's one line on stdout. */
export type PeerReply<K extends PeerRequest["peer"]> = { ok: PeerAnswers[K] } | { error: string };

/** Runs one peer measurement in `deno run --config bench/peers/deno.json` on the same adapter. */
export async function runPeer<K extends PeerRequest["peer"]>(
  request: Extract<PeerRequest, { peer: K }>,
): Promise<PeerAnswers[K]> {
  const config = new URL("./peers/deno.json", import.meta.url);
  const entry = new URL("./peers/main.ts", import.meta.url);
  try {
    if (config.protocol !== "file:") throw new Error();
    await Deno.stat(config);
  } catch {
    throw new Error("the peers run from a source checkout only (bench/peers/ is not beside this)");
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", config.pathname, entry.pathname, JSON.stringify(request)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const last = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  let reply: PeerReply<K>;
  try {
    reply = JSON.parse(last);
  } catch {
    throw new Error(`bench/peers/main.ts exited with code ${out.code} and no answer`);
  }
  if ("error" in reply) throw new Error(reply.error);
  return reply.ok;
}
