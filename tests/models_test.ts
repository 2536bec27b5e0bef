// The study's models: parameter counts against Table 2 (within 3%), and built models
// against the analytical counts.
import type { ModelConfig } from "../models/config.ts";
import { buildModel, parameterCount, presetByName, PRESETS } from "../models/presets.ts";
import { initValues, Rng } from "../layers/init.ts";
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

Deno.test("fourier2d init: 1, x, y, then waves; a heatmap blob maps to its score and position", () => {
  const side = 16, rows = 12;
  const w = initValues(rows * side * side, { kind: "fourier2d", side }, new Rng(0));
  const at = (k: number, x: number, y: number) => w[k * side * side + y * side + x];
  assert([...Array(side * side).keys()].every((i) => w[i] === 1), "row 0 is the constant 1");
  assertEquals([at(1, 0, 5), at(1, side - 1, 5)], [1 / side - 1, 1 - 1 / side]); // x ramp
  assertEquals([at(2, 3, 0), at(2, 3, side - 1)], [1 / side - 1, 1 - 1 / side]); // y ramp
  // row 3 = cos((pi / 2)(fx x + fy y)) for the first frequency, row 4 its sine
  for (let k = 3; k < rows; k++) {
    const norm = Math.hypot(
      ...Array.from({ length: side * side }, (_, i) => w[k * side * side + i]),
    );
    assert(norm > 1, `row ${k} is not empty`);
  }
  // A Gaussian blob (sigma 0.6, score 0.8) at pixel (11.3, 4.6): the x and y features divided
  // by the mass feature are the blob's position in [-1, 1].
  const blob = new Float32Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      blob[y * side + x] = 0.8 * Math.exp(-((x - 11.3) ** 2 + (y - 4.6) ** 2) / (2 * 0.36));
    }
  }
  const feat = (k: number) => blob.reduce((a, v, i) => a + v * w[k * side * side + i], 0);
  const px = (2 * 11.3 + 1) / side - 1, py = (2 * 4.6 + 1) / side - 1;
  assert(Math.abs(feat(1) / feat(0) - px) < 1e-3, `x: ${feat(1) / feat(0)} vs ${px}`);
  assert(Math.abs(feat(2) / feat(0) - py) < 1e-3, `y: ${feat(2) / feat(0)} vs ${py}`);
  assert(Math.abs(feat(0) - 0.8 * 2 * Math.PI * 0.36) < 1e-2, `mass ${feat(0)}`);
});
