// Each model family against a PyTorch reference (tests/fixtures/make_model_fixtures.py)
// with the same weights: logits and every parameter's gradient of the mean cross-entropy.
import { fileURLToPath } from "node:url";
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import { asFloat32, readSafetensors } from "../io/safetensors.ts";
import type { ModelConfig } from "../models/config.ts";
import { buildModel } from "../models/presets.ts";
import { assert } from "./assert.ts";
import { assertClose, gpuTest, readF32 } from "./helpers.ts";

const FIXTURE = fileURLToPath(new URL("./fixtures/models.safetensors", import.meta.url));
const TOL = { atol: 2e-4, rtol: 2e-4 };

for (
  const name of [
    "vanilla_heatmap",
    "vanilla_kp2d",
    "vivit_m1",
    "vivit_m2",
    "motionbert_heatmap",
    "motionbert_kp2d",
    "vanilla_joint_stem",
    "motionbert_stack", // the study's token: both persons' planes of a joint
  ]
) {
  gpuTest(`${name}: logits and all parameter gradients match PyTorch`, async (rt) => {
    const st = await readSafetensors(FIXTURE);
    const c = JSON.parse(st.metadata[name]) as ModelConfig;
    const model = buildModel(rt, c, 0);
    const params = model.namedParams();
    const fixtureNames = [...st.tensors.keys()].filter((k) =>
      k.startsWith(`${name}/`) && !k.includes("/grad/") && !/\/(input|labels|logits)$/.test(k)
    ).map((k) => k.slice(name.length + 1));
    assert(
      fixtureNames.length === params.size && fixtureNames.every((k) => params.has(k)),
      `parameter names differ: heatformer [${
        [...params.keys()].filter((k) => !fixtureNames.includes(k)).join(", ")
      }] vs PyTorch [${fixtureNames.filter((k) => !params.has(k)).join(", ")}]`,
    );
    for (const [k, p] of params) {
      const t = st.tensors.get(`${name}/${k}`)!;
      assert(t.shape.join() === p.tensor.shape.join(), `${k}: [${t.shape}] vs [${p.tensor.shape}]`);
      rt.write(p.tensor, asFloat32(t));
      rt.write(p.tensor.grad!, new Float32Array(p.tensor.size));
    }
    const input = st.tensors.get(`${name}/input`)!, labels = st.tensors.get(`${name}/labels`)!;
    const logits = rt.tidy(() => {
      const l = model.forward(rt.tensor(asFloat32(input), input.shape));
      backward(ops.crossEntropy(l, rt.tensor(labels.data as Int32Array, labels.shape, "i32")));
      return l;
    });
    assertClose(
      `${name} logits`,
      await readF32(rt, logits),
      asFloat32(st.tensors.get(`${name}/logits`)!),
      TOL,
    );
    rt.dispose(logits);
    for (const [k, p] of params) {
      assertClose(
        `${name} d(${k})`,
        await readF32(rt, p.tensor.grad!),
        asFloat32(st.tensors.get(`${name}/grad/${k}`)!),
        TOL,
      );
    }
  });
}
