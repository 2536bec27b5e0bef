// MotionBERT's official action model against heatformer's DSTformer: a small model with
// seeded weights, written by tests/fixtures/make_motionbert_official.py from the official
// architecture (tests/fixtures/motionbert_reference.py) with the official state_dict keys,
// loaded here through models/motionbert_names.ts. The representation, the logits (batch and
// running statistics) and a fine-tune step's gradients must agree within 1e-4 of the largest
// expected value. The name map's prefixes and reports are checked without a GPU.
import { fileURLToPath } from "node:url";
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import { asFloat32, readSafetensors } from "../io/safetensors.ts";
import type { ModelConfig } from "../models/config.ts";
import { DSTformer } from "../models/dstformer.ts";
import {
  canonicalKey,
  loadOfficial,
  type LoadReport,
  mapOfficialState,
  officialName,
  type StateTensor,
} from "../models/motionbert_names.ts";
import { DEFAULT_CONFIG } from "../models/config.ts";
import { parameterCount, presetByName } from "../models/presets.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { assertClose, gpuTest, readF32 } from "./helpers.ts";

const FIXTURE = fileURLToPath(
  new URL("./fixtures/motionbert_official.safetensors", import.meta.url),
);
const REL = 1e-4;

/** Fails unless max |got - want| <= REL x max |want|; returns that ratio. */
function assertRel(what: string, got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  return assertClose(what, got, want, { atol: REL * scale, rtol: 0 }) / scale;
}

interface Fixture {
  config: ModelConfig;
  state: Map<string, StateTensor>;
  get(name: string): Float32Array;
  shape(name: string): number[];
  names: string[];
}

async function loadFixture(): Promise<Fixture> {
  const st = await readSafetensors(FIXTURE);
  const c = JSON.parse(st.metadata.config);
  const config: ModelConfig = {
    ...DEFAULT_CONFIG,
    family: "motionbert",
    width: c.dim_feat,
    depth: c.depth,
    heads: c.num_heads,
    mlpRatio: c.mlp_ratio,
    repDim: c.dim_rep,
    headHidden: c.hidden_dim,
    classes: c.classes,
    dropout: 0,
    headDropout: 0,
    dropPath: 0,
    input: { kind: "kp2d", channels: c.num_joints, frames: c.frames, size: 56, persons: c.persons },
  };
  const state = new Map<string, StateTensor>();
  for (const [k, t] of st.tensors) if (k.startsWith("state/")) state.set(k.slice(6), t);
  const get = (name: string) => {
    const t = st.tensors.get(name);
    if (!t) throw new Error(`${name} missing: rerun tests/fixtures/make_motionbert_official.py`);
    return t;
  };
  return {
    config,
    state,
    get: (n) => asFloat32(get(n)),
    shape: (n) => get(n).shape,
    names: [...st.tensors.keys()],
  };
}

function build(rt: Runtime, f: Fixture, state = f.state): { model: DSTformer; r: LoadReport } {
  const model = new DSTformer(rt, f.config, 0);
  const r = loadOfficial(model, state);
  for (const p of model.namedParams().values()) {
    rt.write(p.tensor.grad!, new Float32Array(p.tensor.size));
  }
  return { model, r };
}

function dispose(rt: Runtime, model: DSTformer): void {
  for (const p of model.namedParams().values()) {
    rt.dispose(p.tensor);
    rt.dispose(p.tensor.grad!);
  }
  for (const b of model.namedBuffers().values()) rt.dispose(b);
}

gpuTest("MotionBERT official weights: representation, logits, fine-tune gradients", async (rt) => {
  const f = await loadFixture();
  const { model, r } = build(rt, f);
  assertEquals(r.ignored.sort(), [
    "module.backbone.head.bias",
    "module.backbone.head.weight",
    "module.head.bn.num_batches_tracked",
  ]);
  assertEquals(r.trimmed, ["module.backbone.temp_embed"]); // 16 rows, 12 frames

  const x = () => rt.tensor(f.get("input"), f.shape("input"));
  const worst: Record<string, number> = {};

  // evaluation mode first: the checkpoint's running statistics, before training moves them
  model.train(false);
  const evalLogits = rt.tidy(() => model.forward(x()));
  worst.logits_eval = assertRel(
    "logits (eval)",
    await readF32(rt, evalLogits),
    f.get("logits_eval"),
  );
  rt.dispose(evalLogits);

  model.train(true);
  const labels = f.get("labels");
  const { rep, logits } = rt.tidy(() => {
    const { rep } = model.represent(x());
    const logits = model.forward(x());
    backward(ops.crossEntropy(logits, rt.tensor(Int32Array.from(labels), [labels.length], "i32")));
    return { rep, logits };
  });
  worst.rep = assertRel("representation", await readF32(rt, rep), f.get("rep"));
  worst.logits = assertRel("logits (train)", await readF32(rt, logits), f.get("logits"));
  rt.dispose(rep);
  rt.dispose(logits);

  const byOfficial = new Map([...model.namedParams()].map(([k, p]) => [officialName(k), p]));
  const grads = f.names.filter((k) => k.startsWith("grad/"));
  assert(grads.length >= 8, "the fixture has gradients");
  for (const k of grads) {
    const p = byOfficial.get(k.slice(5));
    assert(p, `${k}: no heatformer parameter`);
    const want = f.get(k).subarray(0, p.tensor.size); // temp_embed: the model's frames only
    worst[k] = assertRel(`d(${k})`, await readF32(rt, p.tensor.grad!), want);
  }
  const buffers = model.namedBuffers();
  for (const k of ["running_mean", "running_var"]) {
    worst[k] = assertRel(
      `head.bn.${k} after the step`,
      await readF32(rt, buffers.get(`head.bn.${k}`)!),
      f.get(`after/head.bn.${k}`),
    );
  }
  console.log(
    Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(", "),
  );
  dispose(rt, model);
});

gpuTest("MotionBERT official weights: the fixture tells the two streams apart", async (rt) => {
  const f = await loadFixture();
  const swapped = new Map(
    [...f.state].map(([k, t]) => [
      k.replace(/blocks_(st|ts)/, (_, s) => `blocks_${s === "st" ? "ts" : "st"}`),
      t,
    ]),
  );
  const { model } = build(rt, f, swapped);
  const logits = rt.tidy(() => model.forward(rt.tensor(f.get("input"), f.shape("input"))));
  let failed = false;
  try {
    assertRel("logits", await readF32(rt, logits), f.get("logits"));
  } catch {
    failed = true;
  }
  assert(failed, "swapping the ST and TS streams should change the logits");
  rt.dispose(logits);
  dispose(rt, model);
});

// ---- the name map, without a GPU -------------------------------------------------------

const T = (...shape: number[]): StateTensor => ({
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
});

/** Shapes of a depth-1 model (d 4, J 3, T 5, rep 2, hidden 6, 7 classes) by heatformer name. */
function smallShapes(): Map<string, number[]> {
  const d = 4,
    s = new Map<string, number[]>([
      ["joints_embed.weight", [d, 3]],
      ["joints_embed.bias", [d]],
      ["pos_embed.weight", [3, d]],
      ["temp_embed.weight", [5, 1, d]],
      ["levels.0.fuse.weight", [2, 2 * d]],
      ["levels.0.fuse.bias", [2]],
      ["norm.weight", [d]],
      ["norm.bias", [d]],
      ["pre_logits.weight", [2, d]],
      ["pre_logits.bias", [2]],
      ["head.fc1.weight", [6, 6]],
      ["head.fc1.bias", [6]],
      ["head.bn.weight", [6]],
      ["head.bn.bias", [6]],
      ["head.bn.running_mean", [6]],
      ["head.bn.running_var", [6]],
      ["head.fc2.weight", [7, 6]],
      ["head.fc2.bias", [7]],
    ]);
  for (const st of ["st_spatial", "st_temporal", "ts_temporal", "ts_spatial"]) {
    const b = `levels.0.${st}`;
    s.set(`${b}.norm1.weight`, [d]).set(`${b}.norm1.bias`, [d]);
    s.set(`${b}.attn.qkv.weight`, [3 * d, d]).set(`${b}.attn.qkv.bias`, [3 * d]);
    s.set(`${b}.attn.proj.weight`, [d, d]).set(`${b}.attn.proj.bias`, [d]);
    s.set(`${b}.norm2.weight`, [d]).set(`${b}.norm2.bias`, [d]);
    s.set(`${b}.mlp.fc1.weight`, [2 * d, d]).set(`${b}.mlp.fc1.bias`, [2 * d]);
    s.set(`${b}.mlp.fc2.weight`, [d, 2 * d]).set(`${b}.mlp.fc2.bias`, [d]);
  }
  return s;
}

/** An official state_dict for those shapes, keys as `key(official)` writes them. */
function officialState(
  shapes: Map<string, number[]>,
  key: (k: string) => string | null,
): Map<string, StateTensor> {
  const out = new Map<string, StateTensor>();
  for (const [name, shape] of shapes) {
    const k = key(officialName(name));
    if (!k) continue;
    const s = name === "pos_embed.weight"
      ? [1, ...shape]
      : name === "temp_embed.weight"
      ? [1, 9, 1, shape[2]] // maxlen 9 > 5 frames
      : shape;
    out.set(k, T(...s));
  }
  out.set(key("backbone.head.weight") ?? "x", T(3, 2));
  return out;
}

Deno.test("motionbert names: the official keys of every parameter, and back", () => {
  assertEquals(
    officialName("levels.3.ts_spatial.attn.qkv.weight"),
    "backbone.blocks_ts.3.attn_s.qkv.weight",
  );
  assertEquals(
    officialName("levels.0.st_temporal.mlp.fc2.bias"),
    "backbone.blocks_st.0.mlp_t.fc2.bias",
  );
  assertEquals(officialName("levels.1.fuse.weight"), "backbone.ts_attn.1.weight");
  assertEquals(officialName("pre_logits.bias"), "backbone.pre_logits.fc.bias");
  assertEquals(officialName("temp_embed.weight"), "backbone.temp_embed");
  assertEquals(officialName("head.bn.running_var"), "head.bn.running_var");
  assertThrows(() => officialName("cls.weight"), Error);
  const shapes = smallShapes();
  const names = [...shapes.keys()].map(officialName);
  assertEquals(new Set(names).size, shapes.size, "one official key per parameter");
  for (const n of names) assertEquals(canonicalKey(`module.${n}`), n);
  assertEquals(
    canonicalKey("model_pos.module.joints_embed.weight"),
    "backbone.joints_embed.weight",
  );
  assertEquals(canonicalKey("model.module.head.fc1.bias"), "head.fc1.bias");
  assertEquals(canonicalKey("module.head.weight"), "backbone.head.weight"); // the pose head
});

Deno.test("motionbert names: action and pretraining checkpoints, strict reports", () => {
  const shapes = smallShapes();
  // an action checkpoint: "module.backbone." and "module.head."
  const action = mapOfficialState(officialState(shapes, (k) => `module.${k}`), shapes);
  assertEquals([action.missing, action.unexpected, action.mismatched], [[], [], []]);
  assertEquals(action.ignored, ["module.backbone.head.weight"]);
  assertEquals(action.trimmed, ["module.backbone.temp_embed"]);
  assertEquals(action.tensors.get("temp_embed.weight")!.length, 5 * 4);
  // a pretraining checkpoint's model_pos, flattened: the backbone alone, no "backbone."
  const pre = mapOfficialState(
    officialState(
      shapes,
      (k) => k.startsWith("head.") ? null : `model_pos.module.${k.replace(/^backbone\./, "")}`,
    ),
    shapes,
  );
  assertEquals(pre.missing, [...shapes.keys()].filter((k) => k.startsWith("head.")));
  assertEquals([pre.unexpected, pre.mismatched], [[], []]);
  // wrong shapes, strangers and a checkpoint too short for the model's frames
  const bad = officialState(shapes, (k) => k);
  bad.set("backbone.joints_embed.weight", T(4, 2)); // (x, y) without the confidence
  bad.set("backbone.temp_embed", T(1, 3, 1, 4));
  bad.set("backbone.blocks_st.0.attn_s.ts_attn.weight", T(8, 8));
  const r = mapOfficialState(bad, shapes);
  assertEquals(r.mismatched.map((m) => m.name), ["joints_embed.weight", "temp_embed.weight"]);
  assertEquals(r.unexpected, ["backbone.blocks_st.0.attn_s.ts_attn.weight"]);
  assertEquals(r.missing, ["joints_embed.weight", "temp_embed.weight"]);
});

Deno.test("motionbert-base: the official model's parameters, less the unused pose head", () => {
  // PyTorch: ActionNet(DSTformer(dim_feat 512, dim_rep 512, depth 5, 8 heads, mlp_ratio 2,
  // 17 joints, maxlen 243), 60 classes) has 60,421,193 parameters; its pose head 512*3+3.
  assertEquals(parameterCount(presetByName("motionbert-base").config), 60421193 - 1539);
});
