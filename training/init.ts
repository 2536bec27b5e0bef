// `run.init` (`train --init RUN|CHECKPOINT`): a new run starts from another run's weights, or
// from MotionBERT's official PyTorch checkpoint (.bin / .pt / .pth, through its names). Every
// parameter and buffer whose name and shape match is loaded; the rest keep their fresh
// initialisation, reported like PyTorch's strict loading (missing, unexpected, mismatched), so
// a head of another class count, or a heatmap embedding where the source took keypoints, starts
// fresh while the encoder is carried over. Nothing in common is an error.
import { join } from "node:path";
import { readCheckpoint } from "../io/checkpoint.ts";
import { readTorchCheckpoint } from "../io/torch_checkpoint.ts";
import { mapOfficialState, stateShapes, writeMapped } from "../models/motionbert_names.ts";
import { asFloat32 } from "../io/safetensors.ts";
import type { Module } from "../layers/module.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { ConfigError } from "./experiment.ts";
import { readRunConfig } from "./experiment_file.ts";
import { ENCODER } from "./run_folder.ts";
import { lockHolder } from "./run_lock.ts";

export interface InitReport {
  source: string;
  loaded: number;
  /** Model tensors the source does not have (they start fresh). */
  missing: string[];
  /** Source tensors the model does not have. */
  unexpected: string[];
  /** Same name, another shape (they start fresh). */
  mismatched: { name: string; source: number[]; model: number[] }[];
}

/** The checkpoint a source names: a run folder's final one (last or best), or the file. */
async function checkpointOf(source: string): Promise<string> {
  const stat = await Deno.stat(source).catch(() => null);
  if (!stat) throw new ConfigError(`run.init: ${source} does not exist`);
  if (!stat.isDirectory) return source;
  const holder = await lockHolder(source);
  if (holder) {
    // its checkpoints are those of an epoch in the middle: not what the folder will hold
    throw new ConfigError(
      `run.init: ${source} is still being trained (process ${holder.pid} on ${holder.host}); ` +
        "start from it when it has finished, or name one of its checkpoint files",
    );
  }
  // a pretraining run: its final weights without optimiser state
  const encoder = join(source, ENCODER);
  if (await Deno.stat(encoder).catch(() => null)) return encoder;
  const which = await readRunConfig(source).then((r) => r.experiment.eval.checkpoint, () => "last");
  return join(source, `${which}.safetensors`);
}

/** A PyTorch checkpoint of MotionBERT, through the official names (models/motionbert_names.ts). */
async function initFromTorch(model: Module, path: string): Promise<InitReport> {
  const t = await readTorchCheckpoint(path, { toFloat32: true });
  const r = mapOfficialState(t.tensors, stateShapes(model));
  writeMapped(model, r);
  return {
    source: path,
    loaded: r.tensors.size,
    missing: r.missing,
    unexpected: r.unexpected,
    mismatched: r.mismatched.map((m) => ({ name: m.name, source: m.checkpoint, model: m.model })),
  };
}

/** Loads what matches from `source` into the model; returns the report. */
export async function initFrom(rt: Runtime, model: Module, source: string): Promise<InitReport> {
  const path = await checkpointOf(source);
  if (/\.(bin|pt|pth)$/.test(path)) return checkLoaded(await initFromTorch(model, path), "");
  const st = await readCheckpoint(path);
  const want = new Map<string, { shape: readonly number[]; write: (d: Float32Array) => void }>();
  for (const [k, p] of model.namedParams()) {
    want.set(k, { shape: p.tensor.shape, write: (d) => rt.write(p.tensor, d) });
  }
  for (const [k, b] of model.namedBuffers()) {
    want.set(k, { shape: b.shape, write: (d) => rt.write(b, d) });
  }
  const report: InitReport = {
    source: path,
    loaded: 0,
    missing: [],
    unexpected: [],
    mismatched: [],
  };
  for (const [name, t] of want) {
    const got = st.tensors.get(`model.${name}`);
    if (!got) report.missing.push(name);
    else if (got.shape.join() !== t.shape.join()) {
      report.mismatched.push({ name, source: [...got.shape], model: [...t.shape] });
    } else {
      t.write(asFloat32(got));
      report.loaded++;
    }
  }
  for (const k of st.tensors.keys()) {
    if (k.startsWith("model.") && !want.has(k.slice(6))) report.unexpected.push(k.slice(6));
  }
  return checkLoaded(report, st.metadata.preset ?? "unknown");
}

function checkLoaded(r: InitReport, preset: string): InitReport {
  if (r.loaded > 0) return r;
  throw new ConfigError(
    `run.init: ${r.source} shares no parameter with this model${
      preset ? ` (its preset: ${preset})` : ""
    }`,
  );
}

/** The report in one line. */
export function initLine(r: InitReport): string {
  const list = (xs: string[]) =>
    xs.length ? `${xs.length} (${xs.slice(0, 4).join(", ")}${xs.length > 4 ? ", ..." : ""})` : "0";
  return `init from ${r.source}: ${r.loaded} tensors loaded; missing ${list(r.missing)}; ` +
    `unexpected ${list(r.unexpected)}; shape-mismatched ${list(r.mismatched.map((m) => m.name))}`;
}
