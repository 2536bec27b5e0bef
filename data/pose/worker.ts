// The pose worker as a child process: data/pose/tfjs/main.ts, a project of its own with its own
// deno.json and deno.lock, so that TensorFlow.js is fetched (into DENO_DIR, once) when a video
// command first runs it, never by `deno task train`. Started once per command; inputs go to its
// stdin and the model's outputs come back on its stdout (data/pose/worker_protocol.ts).
import {
  ByteReader,
  encodeRequest,
  readMessage,
  type TfBackend,
  type WorkerError,
  type WorkerHello,
  type WorkerStart,
} from "./worker_protocol.ts";

export class PoseWorker {
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stdout: ByteReader;
  #backend: TfBackend = "cpu";

  private constructor(start: WorkerStart, config: URL, entry: URL) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", config.pathname, entry.pathname, JSON.stringify(start)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#stdout = new ByteReader(this.#child.stdout);
  }

  /** The worker with `start.model` loaded on its backend. */
  static async start(start: WorkerStart): Promise<PoseWorker> {
    const config = new URL("./tfjs/deno.json", import.meta.url);
    const entry = new URL("./tfjs/main.ts", import.meta.url);
    try {
      if (config.protocol !== "file:") throw new Error();
      await Deno.stat(config);
    } catch {
      throw new Error(
        "the pose estimator runs from a source checkout only (data/pose/tfjs/ is not beside " +
          "this compiled or bundled heatformer): run `deno run -A main.ts` from the repository",
      );
    }
    const w = new PoseWorker(start, config, entry);
    try {
      w.#backend = (await w.#next("json") as WorkerHello).backend;
    } catch (e) {
      w.dispose();
      throw e;
    }
    return w;
  }

  /** where the model runs, e.g. "wasm" */
  get backend(): TfBackend {
    return this.#backend;
  }

  /** The next message, of the kind expected; the worker's error or its exit as errors. */
  async #next(kind: "json" | "f32"): Promise<unknown> {
    const m = await readMessage(this.#stdout);
    if (!m) {
      const { code } = await this.#child.status;
      throw new Error(`the pose worker (data/pose/tfjs/main.ts) exited with code ${code}`);
    }
    if ("json" in m && (m.json as WorkerError).error) {
      throw new Error((m.json as WorkerError).error);
    }
    if (!(kind in m)) throw new Error(`the pose worker answered ${Object.keys(m)[0]}, not ${kind}`);
    return "json" in m ? m.json : m.f32;
  }

  /** The model's output for one rows x cols RGB input. */
  async infer(rgb: Uint8Array, rows: number, cols = rows): Promise<Float32Array> {
    const request = encodeRequest(rgb, rows, cols);
    await this.#stdin.write(request).catch(() => {}); // a worker gone: #next says why
    return await this.#next("f32") as Float32Array;
  }

  /** Closes its stdin: the worker ends. */
  dispose(): void {
    this.#stdin.close().catch(() => {});
  }
}
