// `predict RUN X.npy --raw`: an (N, M, T, V, 3) array fed to a keypoint model as it is, with
// no input pipeline (no sampling, no normalisation, no views): the model's logits per sample,
// so anyone can hold heatformer against PyTorch on the same tensor.
import { noGrad } from "../autograd/tape.ts";
import { DataError } from "../data/schema.ts";
import { readNpy } from "../io/npy.ts";
import { cast } from "../autograd/ops.ts";
import type { ModelConfig } from "../models/config.ts";
import type { ActionModel } from "../models/presets.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { UsageError } from "./output.ts";
import { topK } from "./predict.ts";

export interface RawPrediction {
  name: string;
  input: string;
  logits: number[];
  top: { class: string; label: number; prob: number }[];
}

function softmax(l: ArrayLike<number>): Float64Array {
  const m = Math.max(...Array.from(l));
  const e = Float64Array.from(l, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Each sample of the array through the model, `rows` at a time. */
export async function predictRaw(
  rt: Runtime,
  model: ActionModel,
  mc: ModelConfig,
  path: string,
  classes: string[],
  k: number,
  rows: number,
): Promise<RawPrediction[]> {
  if (mc.input.kind === "heatmap") {
    throw new UsageError(`--raw: the model takes heatmaps; --raw feeds keypoint models`);
  }
  const arr = await readNpy(path);
  const want = [mc.input.persons, mc.input.frames, mc.input.channels, 3];
  if (arr.shape.length !== 5 || arr.shape.slice(1).join() !== want.join()) {
    throw new DataError(
      path,
      null,
      `--raw takes (N, ${want.join(", ")}) (N, persons, frames, joints, x/y/score), got (${
        arr.shape.join(", ")
      })`,
    );
  }
  const data = Float32Array.from(arr.data as ArrayLike<number>);
  const n = arr.shape[0], per = data.length / n, K = mc.classes;
  const names = Array.from({ length: K }, (_, c) => classes[c] ?? `class ${c}`);
  model.train(false);
  const out: RawPrediction[] = [];
  for (let i0 = 0; i0 < n; i0 += rows) {
    const i1 = Math.min(n, i0 + rows);
    const logits = rt.tidy(() =>
      noGrad(() => {
        const x = rt.tensor(data.subarray(i0 * per, i1 * per), [i1 - i0, ...want], "f32");
        return cast(model.forward(x), "f32");
      })
    );
    const l = await rt.read(logits);
    rt.dispose(logits);
    for (let i = 0; i < i1 - i0; i++) {
      const row = Array.from(l.subarray(i * K, (i + 1) * K));
      const [top] = topK(softmax(row), names, k);
      out.push({ name: `${i0 + i}`, input: path, logits: row, top });
    }
  }
  return out;
}
