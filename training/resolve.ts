// An experiment from its layers, each leaf's origin recorded by path. The order, later layers
// winning, is fixed:
//
//   defaults < preset < recipe < input < config files (in order) < flags (--set among them)
//
// The preset (model.preset), the recipe (run.recipe) and the input kind (input.kind) are
// read from the layers above them, else the defaults. The input layer is the input
// pipeline's own protocol: PoseConv3D's 10 test clips + flip for heatmaps; for keypoints
// MotionBERT's single unflipped view and the preset's keypoint clip (243 resampled frames
// for DSTformer). `config.json` keeps the origins, so a run says which value came from where.
import { presetByName, presetLayer } from "../models/presets.ts";
import {
  ConfigError,
  DEFAULT_EXPERIMENT,
  type Experiment,
  getLeaf,
  type Layer,
  layerLeaves,
  setLeaf,
  validateExperiment,
} from "./experiment.ts";
import { recipeByName } from "./recipes.ts";

/** Where each leaf came from, by path ("optim.lr": "recipe cpu"). */
export type Origins = Record<string, string>;

/** A layer with the name its leaves' origin takes ("flag", "config configs/x.json"). */
export interface NamedLayer {
  origin: string;
  layer: Layer;
}

export interface Resolved {
  experiment: Experiment;
  origins: Origins;
}

/** The input pipeline's protocol for an input kind (and the preset's keypoint clip). */
function inputLayer(kind: string, presetName: string): Layer {
  if (kind === "heatmap") return { eval: { clips: 10, flip: true } };
  return {
    input: { ...presetByName(presetName).keypointInput },
    augment: { flip: 0 },
    eval: { clips: 1, flip: false },
  };
}

/** The value a leaf takes from the user's layers (last wins), else the fallback. */
function chosen(user: NamedLayer[], path: string, fallback: unknown): string {
  let v = fallback;
  for (const { layer } of user) v = getLeaf(layer, path) ?? v;
  return String(v);
}

function named<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new ConfigError(`${path}: ${(e as Error).message}`);
  }
}

/** The fixed layers under the user's ones: defaults, preset, recipe, input. */
export function baseLayers(user: NamedLayer[]): NamedLayer[] {
  const presetName = chosen(user, "model.preset", DEFAULT_EXPERIMENT.model.preset);
  const preset = named("model.preset", () => presetByName(presetName));
  const pl = presetLayer(preset);
  const recipeName = chosen(user, "run.recipe", pl.run?.recipe);
  const recipe = named("run.recipe", () => recipeByName(recipeName));
  const kind = chosen(user, "input.kind", pl.input?.kind);
  return [
    { origin: "default", layer: DEFAULT_EXPERIMENT },
    { origin: `preset ${preset.name}`, layer: pl },
    { origin: `recipe ${recipe.name}`, layer: recipe.layer },
    { origin: `input ${kind}`, layer: inputLayer(kind, preset.name) },
  ];
}

/** Deep-merges layers in order, recording each leaf's origin; validates the result. */
export function mergeLayers(layers: NamedLayer[]): Resolved {
  const merged = structuredClone(DEFAULT_EXPERIMENT);
  const origins: Origins = {};
  for (const { origin, layer } of layers) {
    for (const [path, value] of layerLeaves(layer)) {
      setLeaf(merged, path, structuredClone(value));
      origins[path] = origin;
    }
  }
  return { experiment: validateExperiment(merged), origins };
}

/** The experiment of the user's layers (config files, then flags) over the fixed ones. */
export function resolveExperiment(user: NamedLayer[]): Resolved {
  return mergeLayers([...baseLayers(user), ...user]);
}
