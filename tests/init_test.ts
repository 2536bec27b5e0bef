// Starting from another run's weights (`--init`) and fine-tuning with parameter groups: the
// head's learning rate a multiple of the backbone's, a frozen backbone never moving, and what
// does not match (another input's embedding) starting fresh, reported by name.
import { encodeNpy } from "../io/png.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { runCli } from "./cli.ts";
import { Optimizer } from "../training/optimizer.ts";
import { train } from "../training/trainer.ts";
import { assert, assertEquals } from "./assert.ts";
import { gpuTest, readF32 } from "./helpers.ts";
import { tiny, tinyTest } from "./tiny.ts";

gpuTest(
  "optimizer groups: the head's lr scale multiplies its step; scale 0 freezes",
  async (rt) => {
    const make = (name: string) => ({
      tensor: rt.tensor(new Float32Array([1, -1, 2, 0.5]), [4], "f32", { persistent: true, name }),
      noDecay: false,
    });
    const params = new Map([["head.w", make("h")], ["body.w", make("b")], ["frozen.w", make("f")]]);
    const scale = (n: string) => n.startsWith("head.") ? 10 : n.startsWith("frozen.") ? 0 : 1;
    const opt = new Optimizer(rt, params, {
      kind: "adamw",
      weightDecay: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      momentum: 0,
      nesterov: false,
      clipNorm: 0,
      lrScale: scale,
    });
    const grads = new Float32Array([0.3, -0.2, 0.1, 0.4]);
    for (const p of params.values()) rt.write(p.tensor.grad!, grads);
    opt.beginStep(1e-3);
    opt.step();
    const delta = async (n: string) => {
      const now = await readF32(rt, params.get(n)!.tensor);
      return Array.from(now, (v, i) => v - [1, -1, 2, 0.5][i]);
    };
    const [head, body, frozen] = [
      await delta("head.w"),
      await delta("body.w"),
      await delta("frozen.w"),
    ];
    assertEquals(frozen, [0, 0, 0, 0]);
    for (let i = 0; i < 4; i++) {
      assert(Math.abs(head[i] / body[i] - 10) < 1e-3, `element ${i}: ${head[i]} vs ${body[i]}`);
    }
  },
);

tinyTest(
  "--init: matching tensors load, another input's embedding starts fresh; a frozen backbone stays",
  async (rt, { dir, data }) => {
    await train(rt, tiny(data, `${dir}/src`, { run: { epochs: 1 } }), false);
    const src = await readSafetensors(`${dir}/src/last.safetensors`);
    // the same model on keypoints, its backbone frozen: only the head and the new embedding train
    const s = await train(
      rt,
      tiny(data, `${dir}/kp`, {
        input: { kind: "kp3d" },
        run: { epochs: 1, init: `${dir}/src` },
        optim: { freeze: "backbone" },
      }),
      false,
    );
    assertEquals(s.epochs, 1);
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/kp/config.json`));
    const init = cfg.record.init;
    assert(init.loaded > 10, JSON.stringify(init));
    // the keypoint embedding is new; the heatmap stem's tensors are the source's alone
    assertEquals([init.missing, init.mismatched], [["embed.weight", "embed.bias"], []]);
    assert(init.unexpected.includes("embed.spatial.weight"), JSON.stringify(init));
    const after = await readSafetensors(`${dir}/kp/last.safetensors`);
    const same = (k: string) => {
      const a = src.tensors.get(k)!.data, b = after.tensors.get(k)!.data;
      return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
    };
    const blocks = [...after.tensors.keys()].filter((k) => k.startsWith("model.blocks."));
    assert(
      blocks.length > 0 && blocks.every(same),
      "the frozen, initialised backbone is unchanged",
    );
    assert(!same("model.head.weight"), "the head trained");
  },
);

tinyTest(
  "predict --raw: an (N, M, T, V, 3) array through the model as it is: its logits",
  async (rt, { dir, data }) => {
    const run = `${dir}/kp`;
    await train(rt, tiny(data, run, { input: { kind: "kp3d" }, run: { epochs: 1 } }), false);
    const shape = [3, 2, 8, 25, 3];
    const x = new Float32Array(shape.reduce((a, b) => a * b)).map((_, i) => Math.sin(i * 0.37));
    await Deno.writeFile(`${dir}/x.npy`, encodeNpy(x, shape));
    const r = await runCli(["predict", run, `${dir}/x.npy`, "--raw", "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(lines.length, 3);
    // the same tensor through the same weights here
    const { buildModel } = await import("../models/presets.ts");
    const { loadCheckpoint } = await import("../io/checkpoint.ts");
    const st = await readSafetensors(`${run}/last.safetensors`);
    const model = buildModel(rt, JSON.parse(st.metadata.config), 0);
    await loadCheckpoint(rt, `${run}/last.safetensors`, model);
    model.train(false);
    const want = await readF32(rt, model.forward(rt.tensor(x, shape, "f32")));
    const got = lines.flatMap((l) => l.logits as number[]);
    assertEquals(got.length, want.length);
    got.forEach((v, i) => assert(Math.abs(v - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `${i}`));
    await Deno.writeFile(`${dir}/y.npy`, encodeNpy(x.subarray(0, 2 * 8 * 25 * 3), [2, 8, 25, 3]));
    const wrong = await runCli(["predict", run, `${dir}/y.npy`, "--raw"]);
    assert(wrong.code === 1 && wrong.stderr.includes("--raw takes (N, 2, 8, 25, 3)"), wrong.stderr);
  },
);
