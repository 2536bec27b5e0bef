// Checkpoints: a model's parameters and buffers, the optimiser state and the run's
// position, in one safetensors file (readable by PyTorch: `safetensors.torch.load_file`),
// written atomically (temporary file, then rename).
import type { Module } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { Optimizer } from "../training/optimizer.ts";
import { asFloat32, readSafetensors, serializeSafetensors } from "./safetensors.ts";

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

/** The optimiser's clip / loss-scale state (kernels/optim.ts), so a resumed run continues it. */
const OPTIM_SCALE = "optim.grad_scale";

/** Everything that names a tensor in a checkpoint: model.*, buffer.*, optim.*. */
function tensorsOf(model: Module, opt?: Optimizer): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, p] of model.namedParams()) out.set(`model.${k}`, p.tensor);
  for (const [k, b] of model.namedBuffers()) out.set(`model.${k}`, b);
  if (opt) {
    for (const s of opt.slots) s.state.forEach((t, i) => out.set(`optim.${s.name}.${i}`, t));
    out.set(OPTIM_SCALE, opt.gradScale);
  }
  return out;
}

export async function saveCheckpoint(
  rt: Runtime,
  path: string,
  model: Module,
  opt: Optimizer | undefined,
  metadata: Record<string, string>,
): Promise<void> {
  const entries = new Map<string, { dtype: "F32"; shape: number[]; data: Float32Array }>();
  const named = [...tensorsOf(model, opt)];
  const values = await rt.readMany(named.map(([, t]) => t)); // one host sync for all
  named.forEach(([name, t], i) => {
    entries.set(name, { dtype: "F32", shape: [...t.shape], data: Float32Array.from(values[i]) });
  });
  const meta = { ...metadata, format: "heatformer/1", optimizer_step: String(opt?.t ?? 0) };
  const tmp = `${path}.tmp`;
  await Deno.writeFile(tmp, serializeSafetensors(entries, meta));
  await Deno.rename(tmp, path);
}

/**
 * Loads a checkpoint into a model (and optimiser): every tensor must exist with the same
 * shape; a mismatch names the tensor and both shapes. Returns the metadata.
 */
export async function loadCheckpoint(
  rt: Runtime,
  path: string,
  model: Module,
  opt?: Optimizer,
): Promise<Record<string, string>> {
  const st = await readSafetensors(path);
  const want = tensorsOf(model, opt);
  for (const [name, t] of want) {
    const got = st.tensors.get(name);
    if (!got && name === OPTIM_SCALE) continue; // checkpoints before loss scaling
    if (!got) {
      throw new CheckpointError(
        `${path}: tensor "${name}" is missing (is this checkpoint for another model? its preset: ${
          st.metadata.preset ?? "unknown"
        })`,
      );
    }
    if (got.shape.join() !== t.shape.join()) {
      throw new CheckpointError(
        `${path}: tensor "${name}" has shape [${got.shape.join(", ")}] in the checkpoint but [${
          t.shape.join(", ")
        }] in the model (checkpoint preset: ${st.metadata.preset ?? "unknown"})`,
      );
    }
    rt.write(t, asFloat32(got));
  }
  const extra = [...st.tensors.keys()].filter((k) => k.startsWith("model.") && !want.has(k));
  if (extra.length) {
    throw new CheckpointError(
      `${path}: tensors the model does not have: ${extra.slice(0, 5).join(", ")}`,
    );
  }
  if (opt) opt.t = Number(st.metadata.optimizer_step ?? 0);
  return st.metadata;
}
