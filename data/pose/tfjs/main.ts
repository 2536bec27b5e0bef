// The pose worker: a MoveNet graph model on a TF.js backend, answering inputs for as long as
// stdin stays open (data/pose/worker_protocol.ts). data/pose/worker.ts starts it once per command:
// `deno run -A --config data/pose/tfjs/deno.json data/pose/tfjs/main.ts '<WorkerStart as JSON>'`.
// This folder is a project of its own, with its own deno.json and deno.lock, because `deno task`
// installs every npm package of heatformer's deno.json and deno.lock before it runs any task: TF.js
// (about 120 MB) is fetched by the first video command instead of by a newcomer's `deno task train`.
import { dirname, join } from "node:path";
import {
  ByteReader,
  encodeF32,
  encodeJson,
  readRequest,
  type WorkerStart,
} from "../worker_protocol.ts";
import { loadTf, type TfRuntime } from "./tfjs.ts";

type GraphModel = Awaited<ReturnType<TfRuntime["converter"]["loadGraphModel"]>>;

/** A graph model from its model.json and weight files on disk. */
async function loadGraph(rt: TfRuntime, path: string): Promise<GraphModel> {
  const json = JSON.parse(await Deno.readTextFile(path));
  const manifest = json.weightsManifest as { paths: string[]; weights: unknown[] }[];
  const parts = await Promise.all(
    manifest.flatMap((g) => g.paths).map((p) => Deno.readFile(join(dirname(path), p))),
  );
  const weights = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (weights.set(p, at), at + p.length), 0);
  return await rt.converter.loadGraphModel(rt.tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: manifest.flatMap((g) => g.weights) as never,
    weightData: weights.buffer,
  }));
}

/** Runs the model on one rows x cols RGB input (MoveNet takes it as int32); its output. */
async function infer(
  rt: TfRuntime,
  model: GraphModel,
  rgb: Uint8Array,
  rows: number,
  cols: number,
) {
  const x = rt.tf.tensor4d(new Int32Array(rgb), [1, rows, cols, 3], "int32");
  const y = model.execute(x) as ReturnType<TfRuntime["tf"]["tensor"]>;
  try {
    return await y.data() as Float32Array;
  } finally {
    x.dispose();
    y.dispose();
  }
}

/** Loads the model, says which backend it runs on, then answers each input in turn. */
async function serve(start: WorkerStart, out: WritableStreamDefaultWriter<Uint8Array>) {
  const rt = await loadTf(start.backend);
  const model = await loadGraph(rt, start.model);
  await out.write(encodeJson({ backend: rt.backend }));
  const input = new ByteReader(Deno.stdin.readable);
  for (let r; (r = await readRequest(input));) {
    await out.write(encodeF32(await infer(rt, model, r.rgb, r.rows, r.cols)));
  }
  model.dispose();
}

if (import.meta.main) {
  Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp");
  const out = Deno.stdout.writable.getWriter();
  try {
    await serve(JSON.parse(Deno.args[0]) as WorkerStart, out);
  } catch (e) {
    await out.write(encodeJson({ error: (e as Error).message }));
  }
  // Exit explicitly: a backend's threads or timers may keep the event loop alive.
  Deno.exit(0);
}
