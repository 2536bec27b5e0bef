// `heatformer recipes`: the training recipes with their fields and references.
import { RECIPES, STUDY_AUGMENTATION } from "../training/recipes.ts";
import { printJson } from "./output.ts";

export function recipesCommand(o: { json?: boolean }): Promise<void> {
  const rows = RECIPES.map((r) => ({
    name: r.name,
    description: r.description,
    reference: r.reference,
    lrBatch: r.lrBatch ?? null,
    fields: r.fields,
  }));
  if (o.json) printJson({ recipes: rows, augmentation: STUDY_AUGMENTATION });
  else {
    for (const r of rows) {
      console.log(`${r.name}: ${r.description}\n  from ${r.reference}`);
      const fields = Object.entries(r.fields).map(([k, v]) =>
        `${k} ${Array.isArray(v) ? v.join(",") : v}${
          k === "lr" && r.lrBatch ? ` (at batch ${r.lrBatch}, scaled linearly)` : ""
        }`
      );
      console.log(`  ${fields.join(", ")}`);
    }
    const aug = Object.entries(STUDY_AUGMENTATION).map(([k, v]) => `${k} ${v}`).join(", ");
    console.log(`NAME+aug: NAME with the study's augmentations (${aug})`);
  }
  return Promise.resolve();
}
