// The study's models: parameter counts against Table 2 (within 3%), and built models
// against the analytical counts.
import type { ModelConfig } from "../models/config.ts";
import { buildModel, parameterCount, presetByName, PRESETS } from "../models/presets.ts";
import { assert, assertEquals } from "./assert.ts";
import { gpuTest } from "./helpers.ts";

Deno.test("presets: parameter counts within 3% of the study's Table 2", () => {
  for (const p of PRESETS.filter((x) => x.studyParams)) {
    const n = parameterCount(p.config) / 1e6;
    const err = Math.abs(n / p.studyParams! - 1);
    assert(
      err <= 0.03,
      `${p.name}: ${n.toFixed(2)}M vs Table 2's ${p.studyParams}M (${(err * 100).toFixed(1)}%)`,
    );
  }
  // method.md's exact derived counts for the pinned-down ViViT shapes
  assertEquals(parameterCount(presetByName("vivit-m1").config), 8650812);
  assertEquals(parameterCount(presetByName("vivit-m1-small-tubelet").config), 7624508);
  assertEquals(parameterCount(presetByName("vivit-m1-big").config), 63701052);
});

const SMALL: Record<string, Partial<ModelConfig>> = {
  "vanilla-tiny": {},
  "vivit-m1-tiny": {},
  "vivit-m2-tiny": {},
  "motionbert-tiny": {},
};

// Forward and backward of every family are checked against PyTorch in
// model_reference_test.ts (all parameter gradients); here the built models are checked
// against the analytical counts that `heatformer models` reports, for both input kinds.
for (const name of Object.keys(SMALL)) {
  for (
    const kind of name.startsWith("vivit")
      ? ["heatmap"] as const
      : ["heatmap", "kp2d", "kp3d"] as const
  ) {
    gpuTest(`${name} (${kind}): built parameter count = analytical count`, (rt) => {
      const base = presetByName(name).config;
      const c: ModelConfig = {
        ...base,
        classes: 5,
        input: kind === "heatmap"
          ? { ...base.input, frames: 8, size: 16, channels: 6 }
          : { kind, channels: 6, frames: 8, size: 16, persons: 2 },
        tubelet: [4, 8, 8],
      };
      const model = buildModel(rt, c, 1);
      let actual = 0;
      for (const p of model.namedParams().values()) actual += p.tensor.size;
      assertEquals(actual, parameterCount(c), `${name} ${kind} parameter count`);
      for (const p of model.namedParams().values()) {
        rt.dispose(p.tensor);
        rt.dispose(p.tensor.grad!);
      }
      return Promise.resolve();
    });
  }
}
