// `heatformer models`: the presets with parameter counts, GFLOPs per sample and inputs.
import { flopsPerSample, parameterCount, PRESETS } from "../models/presets.ts";
import { FAMILY_INPUTS } from "../training/experiment.ts";
import { printJson } from "./output.ts";

export function modelsCommand(o: { json?: boolean }): Promise<void> {
  const rows = PRESETS.map((p) => ({
    name: p.name,
    family: p.config.family,
    parameters: parameterCount(p.config),
    studyParameters: p.studyParams ? p.studyParams * 1e6 : null,
    gflopsPerSample: flopsPerSample(p.config) / 1e9,
    input: p.config.input,
    keypointInput: p.keypointInput ?? null,
    heatmapPersons: p.config.heatmapPersons,
    recipe: p.recipe,
    inputs: FAMILY_INPUTS[p.config.family],
    description: p.description,
    /** The full model configuration (what bench/peers/torch_train.py builds). */
    config: p.config,
  }));
  if (o.json) printJson({ models: rows });
  else {
    for (const r of rows) {
      const i = r.input;
      const shape = i.kind === "heatmap"
        ? `${i.channels}x${i.frames}x${i.size}x${i.size}`
        : `${i.persons}x${i.frames}x${i.channels}x3`;
      console.log(
        `${r.name.padEnd(24)} ${(r.parameters / 1e6).toFixed(2).padStart(7)}M${
          r.studyParameters ? ` (study ${(r.studyParameters / 1e6).toFixed(2)}M)` : "".padEnd(20)
        }  ${r.gflopsPerSample.toFixed(2).padStart(6)} GFLOPs  ${shape}  ${r.recipe.padEnd(10)} [${
          r.inputs.join(", ")
        }]`,
      );
    }
  }
  return Promise.resolve();
}
