// `heatformer recipes`: the training recipes with their leaves and references.
import { layerLeaves } from "../training/experiment.ts";
import { RECIPES, STUDY_AUGMENTATION } from "../training/recipes.ts";
import { printJson } from "./output.ts";

export function recipesCommand(o: { json?: boolean }): Promise<void> {
  const rows = RECIPES.map((r) => ({
    name: r.name,
    description: r.description,
    reference: r.reference,
    layer: r.layer,
  }));
  if (o.json) printJson({ recipes: rows, augmentation: STUDY_AUGMENTATION });
  else {
    for (const r of rows) {
      console.log(`${r.name}: ${r.description}\n  from ${r.reference}`);
      const leaves = layerLeaves(r.layer).map(([path, v]) =>
        `${path} ${Array.isArray(v) ? v.join(",") : v}`
      );
      console.log(`  ${leaves.length ? leaves.join(", ") : "(the defaults)"}`);
    }
    const aug = layerLeaves(STUDY_AUGMENTATION).map(([k, v]) => `${k} ${v}`).join(", ");
    console.log(`NAME+aug: NAME with the study's augmentations (${aug})`);
  }
  return Promise.resolve();
}
