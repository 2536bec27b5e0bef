// A run's configuration from its layers, each field's origin recorded: the defaults, then the
// preset's input (models/presets.ts), its recipe (training/recipes.ts), a JSON config file,
// and the flags. `config.json` keeps the origins, so a run says which of its values were
// chosen by whom.
import { presetByName } from "../models/presets.ts";
import { DEFAULT_RUN, type RunConfig } from "./config.ts";
import { recipeByName } from "./recipes.ts";

export type Origin = "default" | "preset" | "input" | "recipe" | "config" | "flag";
export type Origins = Partial<Record<keyof RunConfig, Origin>>;

export interface Resolved {
  /** Not yet validated (training/config.ts validateConfig does that). */
  fields: Record<string, unknown>;
  origins: Origins;
  /** Set when the recipe's lr was scaled linearly to the run's batch. */
  lrScaled?: { lr: number; batch: number };
}

/**
 * Layers, later ones winning: defaults < preset input < recipe < config file < flags. The
 * preset and the recipe are named by the flags, else the file, else the defaults; a
 * recipe's lr scales linearly with the run's batch when the recipe names the batch its lr
 * belongs to (PoseConv3D: 0.4 at 256) and neither the file nor a flag sets the lr.
 */
export function resolveLayers(
  fromFile: Record<string, unknown>,
  flags: Record<string, unknown>,
): Resolved {
  const fields: Record<string, unknown> = {};
  const origins: Origins = {};
  const put = (values: Record<string, unknown>, origin: Origin) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) continue;
      fields[k] = v;
      origins[k as keyof RunConfig] = origin;
    }
  };
  const explicit = { ...fromFile, ...flags };
  const model = String(explicit.model ?? DEFAULT_RUN.model);
  const preset = presetByName(model);
  const i = preset.config.input;
  put({ ...DEFAULT_RUN }, "default");
  put({ model, recipe: preset.recipe, input: i.kind, clipLen: i.frames, size: i.size }, "preset");
  put({ persons: i.persons, heatmapPersons: preset.config.heatmapPersons }, "preset");
  const kind = String(explicit.input ?? i.kind);
  // The test protocol of the input's pipeline: PoseConv3D's 10 clips + flip for heatmaps,
  // MotionBERT's single view for keypoints.
  const heatmap = kind === "heatmap";
  put({ testClips: heatmap ? 10 : 1, flipTest: heatmap }, "input");
  if (kind !== "heatmap") {
    put({ ...preset.keypointInput }, "input");
    // MotionBERT's keypoint pipeline does not flip; PoseConv3D flips heatmaps.
    put({ flip: 0 }, "input");
  }
  const recipe = recipeByName(String(explicit.recipe ?? preset.recipe));
  // A recipe's flips and test views are the heatmap pipeline's (PoseConv3D's): keypoint runs keep
  // MotionBERT's unflipped single view.
  const { flip, testClips, flipTest, ...recipeFields } = recipe.fields;
  put(recipeFields, "recipe");
  if (heatmap) put({ flip, testClips, flipTest }, "recipe");
  put(fromFile, "config");
  put(flags, "flag");
  let lrScaled: Resolved["lrScaled"];
  if (recipe.lrBatch && origins.lr === "recipe") {
    const batch = Number(fields.batchSize);
    fields.lr = (Number(recipe.fields.lr) * batch) / recipe.lrBatch;
    lrScaled = { lr: fields.lr as number, batch };
  }
  return { fields, origins, lrScaled };
}
