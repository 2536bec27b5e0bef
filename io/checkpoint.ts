// Checkpoints: a model's parameters and buffers, the optimiser state and the run's
// position, in one safetensors file (readable by PyTorch: `safetensors.torch.load_file`),
// written atomically (temporary file, then rename), with a checksum of the tensor data in the
// metadata so that a damaged file is told apart from a checkpoint of another model.
import type { Module } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { failpoint } from "../runtime/failpoints.ts";
import { writeError } from "./atomic.ts";
import type { Optimizer } from "../training/optimizer.ts";
import {
  asFloat32,
  readSafetensors,
  type SafeTensors,
  SafetensorsError,
  serializeSafetensors,
} from "./safetensors.ts";

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

/** A 32-bit FNV-1a-style hash over the tensors' 4-byte words, in name order. */
function checksum(tensors: Iterable<[string, { data: ArrayBufferView }]>): string {
  let h = 0x811c9dc5;
  for (const [, t] of [...tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const { buffer, byteOffset, byteLength } = t.data;
    const w = byteOffset % 4 === 0
      ? new Uint32Array(buffer, byteOffset, byteLength >> 2)
      : new Uint32Array(new Uint8Array(buffer, byteOffset, byteLength & ~3).slice().buffer);
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w[i], 16777619);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/**
 * Writes a checkpoint atomically (a temporary file, then a rename). With `previous`, the file
 * it replaces is first renamed to `previous` (a crash between the two renames leaves that one).
 */
export async function saveCheckpoint(
  rt: Runtime,
  path: string,
  model: Module,
  opt: Optimizer | undefined,
  metadata: Record<string, string>,
  previous?: string,
): Promise<void> {
  const entries = new Map<string, { dtype: "F32"; shape: number[]; data: Float32Array }>();
  const named = [...tensorsOf(model, opt)];
  const values = await rt.readMany(named.map(([, t]) => t)); // one host sync for all
  named.forEach(([name, t], i) => {
    entries.set(name, { dtype: "F32", shape: [...t.shape], data: Float32Array.from(values[i]) });
  });
  const meta = {
    ...metadata,
    format: "heatformer/1",
    optimizer_step: String(opt?.t ?? 0),
    checksum: checksum(entries),
  };
  const tmp = `${path}.tmp`;
  try {
    await Deno.writeFile(tmp, serializeSafetensors(entries, meta));
  } catch (e) {
    // a full disk: no half-written temporary file stays behind (the old checkpoint does)
    await Deno.remove(tmp).catch(() => {});
    throw writeError(path, e);
  }
  failpoint("checkpoint-written");
  if (previous) {
    await Deno.rename(path, previous).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    failpoint("checkpoint-rotated");
  }
  await Deno.rename(tmp, path);
}

/** Reads a checkpoint and verifies it; a damaged file is a CheckpointError that says so. */
export async function readCheckpoint(path: string): Promise<SafeTensors> {
  let st: SafeTensors;
  try {
    st = await readSafetensors(path);
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    const missing = e.message.includes("No such file") || e.message.includes("not found");
    throw new CheckpointError(
      missing ? e.message : `${path}: damaged checkpoint (${e.message.slice(path.length + 2)})`,
    );
  }
  const want = st.metadata.checksum;
  if (want && checksum(st.tensors) !== want) {
    throw new CheckpointError(`${path}: damaged checkpoint (its tensor data fail the checksum)`);
  }
  return st;
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
  const st = await readCheckpoint(path);
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

/** A checkpoint's metadata, from its header alone (no tensor data read). */
export async function checkpointMetadata(path: string): Promise<Record<string, string>> {
  const f = await Deno.open(path);
  try {
    const head = new Uint8Array(8);
    if ((await f.read(head)) !== 8) throw new CheckpointError(`${path}: damaged checkpoint`);
    const n = Number(new DataView(head.buffer).getBigUint64(0, true));
    const json = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const k = await f.read(json.subarray(at));
      if (k === null) throw new CheckpointError(`${path}: damaged checkpoint (short header)`);
      at += k;
    }
    const header = JSON.parse(new TextDecoder().decode(json));
    return (header.__metadata__ ?? {}) as Record<string, string>;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${path}: damaged checkpoint (${(e as Error).message})`);
  } finally {
    f.close();
  }
}
