// Run folders from before the nested experiment: their config.json is a flat record (format
// 1: `lr`, `clipLen`, `model` = a preset name, `modelConfig` = the model as built). Read as
// a layer with every leaf at its path, so that such runs still evaluate, predict, report and
// resume. The model section comes from `modelConfig` (what was built) where recorded, since
// a flat run's `--depth` set all three depths at once.
import { presetByName } from "../models/presets.ts";
import { ConfigError, type Layer, setLeaf } from "./experiment.ts";
import type { Origins } from "./resolve.ts";
import type { RunRecordFields } from "./experiment_file.ts";

/** Flat field -> leaf path. */
export const FLAT_PATHS: Record<string, string> = {
  model: "model.preset",
  recipe: "run.recipe",
  width: "model.width",
  heads: "model.heads",
  dropout: "model.dropout",
  dropPath: "model.dropPath",
  headDropout: "model.headDropout",
  tubelet: "model.tubelet",
  stem: "model.stem",
  stemDim: "model.stemDim",
  spatialInit: "model.spatialInit",
  heatmapPersons: "input.heatmapPersons",
  input: "input.kind",
  heatmap: "input.heatmap",
  clipLen: "input.clipLen",
  sampling: "input.sampling",
  persons: "input.persons",
  size: "input.size",
  sigma: "input.sigma",
  viewAlign: "input.viewAlign",
  bones: "input.bones",
  motion: "input.motion",
  data: "data.path",
  split: "data.split",
  rotation: "augment.rotation",
  noise: "augment.noise",
  shift: "augment.shift",
  flip: "augment.flip",
  optimizer: "optim.optimizer",
  lr: "optim.lr",
  weightDecay: "optim.weightDecay",
  momentum: "optim.momentum",
  nesterov: "optim.nesterov",
  labelSmoothing: "optim.labelSmoothing",
  clipNorm: "optim.clipNorm",
  batchSize: "optim.batchSize",
  accumulate: "optim.accumulate",
  schedule: "schedule.kind",
  warmupEpochs: "schedule.warmupEpochs",
  milestones: "schedule.milestones",
  gamma: "schedule.gamma",
  epochs: "run.epochs",
  seed: "run.seed",
  out: "run.out",
  f16: "run.f16",
  testClips: "eval.clips",
  flipTest: "eval.flip",
  finalCheckpoint: "eval.checkpoint",
  evalEvery: "eval.every",
};

/** Flat fields that record rather than configure. */
const FLAT_RECORD = ["modelConfig", "dataFile", "extended", "origins"];

/** Whether a parsed config is the flat format: a field of it at the top with a plain value. */
export function isFlatConfig(raw: Record<string, unknown>): boolean {
  return Object.entries(raw).some(([k, v]) =>
    k in FLAT_PATHS && (typeof v !== "object" || v === null || Array.isArray(v))
  );
}

/** The model section of a flat config: what was built, else the preset and its overrides. */
function flatModel(raw: Record<string, unknown>, layer: Layer): void {
  const built = raw.modelConfig as Record<string, unknown> | undefined;
  const preset = typeof raw.model === "string" ? raw.model : undefined;
  if (built && typeof built === "object" && typeof built.family === "string") {
    const { input: _i, classes: _c, heatmapPersons: _h, ...model } = built;
    layer.model = { ...layer.model, ...model };
  } else if (typeof raw.depth === "number" && preset) {
    // a flat --depth set every depth of the preset
    const depth = raw.depth;
    presetByName(preset); // an unknown preset is named by the resolution that follows
    layer.model = { ...layer.model, depth, spatialDepth: depth, temporalDepth: depth };
  }
}

/** A flat config as a layer, its origins by path, and its record. */
export function migrateFlat(
  raw: Record<string, unknown>,
  where = "",
): { layer: Layer; origins: Origins; record: RunRecordFields } {
  const layer: Layer = {};
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(raw)) {
    if (FLAT_RECORD.includes(k) || k === "depth") continue;
    const path = FLAT_PATHS[k];
    if (!path) unknown.push(k);
    else if (v !== undefined) setLeaf(layer, path, v);
  }
  if (unknown.length) {
    throw new ConfigError(
      `${where}unknown field${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} of a flat ` +
        "(format 1) configuration",
    );
  }
  flatModel(raw, layer);
  // a run from before the choice of final checkpoint evaluated its best epoch
  if ("modelConfig" in raw && !("finalCheckpoint" in raw)) {
    setLeaf(layer, "eval.checkpoint", "best");
  }
  // a flat run's lr is the one it used (a recipe's lr was scaled to its batch when resolved)
  if (layer.optim?.lr !== undefined) setLeaf(layer, "optim.lrBatch", 0);
  const origins: Origins = {};
  for (const [k, o] of Object.entries((raw.origins ?? {}) as Record<string, string>)) {
    if (FLAT_PATHS[k]) origins[FLAT_PATHS[k]] = o;
  }
  const record: RunRecordFields = {};
  for (const k of ["dataFile", "modelConfig", "extended"]) if (k in raw) record[k] = raw[k];
  return { layer, origins, record };
}
