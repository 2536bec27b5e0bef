// Layouts are data: the built-ins are valid trees with symmetric pairs; a layout file is
// validated field by field; a made-up 5-joint layout goes through conversion (embedded in the
// Arrow file), heatmaps (joints and limbs), flips and training.
import { fileURLToPath } from "node:url";
import { convertPyskl } from "../data/convert_pyskl.ts";
import { layoutJson, parseLayout, resolveLayoutArg } from "../data/layout_file.ts";
import {
  bodyFrameJoints,
  boneParents,
  flipPermutation,
  LAYOUTS,
  limbFlipPermutation,
} from "../data/layouts.ts";
import { flipClip } from "../data/clip.ts";
import { heatmapReference } from "../kernels/heatmap_reference.ts";
import { DataError, SkeletonFile } from "../data/schema.ts";
import { encodeNpy } from "../io/png.ts";
import { tiny } from "./tiny.ts";
import { train } from "../training/trainer.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { gpuTest } from "./helpers.ts";

const fx = (n: string) => fileURLToPath(new URL(`./fixtures/${n}`, import.meta.url));
const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

Deno.test("layouts: every built-in is a valid tree with symmetric left/right pairs", () => {
  assertEquals(Object.keys(LAYOUTS).sort(), [
    "coco17",
    "h36m17",
    "halpe26",
    "kinect20",
    "mediapipe33",
    "ntu25",
    "openpose18",
    "openpose25",
  ]);
  for (const l of Object.values(LAYOUTS)) {
    const again = parseLayout(layoutJson(l), l.name); // the file checks: tree, ranges, pairs
    assertEquals(again.joints.length, l.joints.length);
    assertEquals(boneParents(l).length, l.joints.length);
    const perm = flipPermutation(l);
    assert(perm.every((p, i) => perm[p] === i), `${l.name}: the flip is an involution`);
    for (const [a, b] of l.flipPairs) {
      assert(
        l.joints[a].replace("left", "X") === l.joints[b].replace("right", "X"),
        `${l.name}: ${l.joints[a]} pairs with ${l.joints[b]}`,
      );
    }
    assert(bodyFrameJoints(l) !== null, `${l.name}: a body frame`);
  }
});

Deno.test("layouts: a layout file's mistakes are named by field", () => {
  const base = { name: "x", joints: ["a", "left_b", "right_b"], parents: [0, 0, 0] };
  const bad: [Record<string, unknown>, string][] = [
    [{ ...base, parents: [0, 0, 5] }, "parents[2]: 5 names a joint past 2"],
    [{ ...base, parents: [1, 0, 0] }, "parents[0]: the root's parent"],
    [{ ...base, parents: undefined, limbs: [[0, 1], [0, 7]] }, "limbs[1]: [0, 7]"],
    [{ ...base, parents: undefined, limbs: [[0, 1], [1, 0]] }, "right_b has no limb to the root"],
    [{ ...base, flipPairs: [[1, 1]] }, "flipPairs[0]"],
    [{ ...base, joints: ["a", "a", "b"] }, 'joints: "a" is listed twice'],
    [{ ...base, root: 9 }, "root: 9"],
    [{ ...base, colour: "red" }, "layout file"],
    [{ ...base, parents: undefined }, "parents or as limbs"],
  ];
  for (const [json, says] of bad) {
    const e = assertThrows(() => parseLayout(json, "my.json"), DataError);
    assert(e.message.includes("my.json") && e.message.includes(says), `${says}: ${e.message}`);
  }
  const ok = parseLayout(base, "my.json");
  assertEquals([ok.flipPairs, ok.limbs, ok.root], [[[1, 2]], [[0, 1], [0, 2]], 0]);
});

gpuTest(
  "layouts: a made-up 5-joint layout converts, renders, flips, trains and predicts",
  async (rt) => {
    const dir = await Deno.makeTempDir();
    const out = `${dir}/star.arrow`;
    const refused = await convertPyskl(fx("pyskl_star5.pickle"), out).catch((e) => e);
    assert(refused instanceof DataError && refused.message.includes("--layout"), `${refused}`);
    const layout = await resolveLayoutArg(fx("layout_star5.json"));
    await convertPyskl(fx("pyskl_star5.pickle"), out, { layout });
    // Self-describing: another process reads the layout from the file alone.
    const ins = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "inspect", out, "--json"],
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    }).output();
    assertEquals(ins.code, 0, new TextDecoder().decode(ins.stderr));
    const info = JSON.parse(new TextDecoder().decode(ins.stdout));
    assertEquals([info.layout, info.joints, info.classes], ["star5", 5, 2]);
    // Flips swap the hands and the feet, and limb channels follow their joints.
    assertEquals(flipPermutation(layout), [0, 2, 1, 4, 3]);
    assertEquals(limbFlipPermutation(layout), [1, 0, 3, 2]);
    const f = await SkeletonFile.open(out);
    const r = await f.read(0);
    const clip = {
      persons: 1,
      frames: 1,
      joints: 5,
      xy: r.keypoint.slice(0, 10).map((v) => v / 10),
      score: new Float32Array(5).fill(1),
      width: 32,
      height: 32,
    };
    const spec = { size: 32, sigma: 0.6, joints: true, limbs: true };
    const plain = heatmapReference(clip, layout, spec);
    flipClip(clip, layout);
    const mirrored = heatmapReference(clip, layout, spec);
    // channel 1 (left hand) of the mirror is channel 2 (right hand) of the original, mirrored
    const px = (h: Float32Array, c: number, x: number, y: number) => h[(c * 32 + y) * 32 + x];
    let checked = 0;
    for (let y = 0; y < 32; y++) {
      for (let x = 1; x < 32; x++) {
        const a = px(plain, 2, x, y), b = px(mirrored, 1, 32 - x, y);
        if (a > 0.5) (checked++, assert(Math.abs(a - b) < 0.25, `(${x}, ${y}): ${a} vs ${b}`));
      }
    }
    assert(checked > 0, "the right hand was drawn");
    await f.close();
    const s = await train(
      rt,
      tiny(out, `${dir}/run`, {
        data: { split: "train:test" },
        input: { heatmap: "both" },
        optim: { batchSize: 4 },
        run: { epochs: 1 },
      }),
      false,
    );
    assertEquals([s.epochs, s.final!.samples, s.final!.confusion.length], [1, 4, 2]);
    // predict: the held-back clips of the Arrow file, and one of them as a bare .npy (T, V, 2)
    const held = await SkeletonFile.open(out);
    const first = await held.read(held.split("test")[0]);
    await held.close();
    await Deno.writeFile(`${dir}/clip.npy`, encodeNpy(first.keypoint, [first.frames, 5, 2]));
    const pr = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "predict", `${dir}/run`, out, `${dir}/clip.npy`, "--split", "test"]
        .concat(["--top-k", "2", "--json"]),
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    }).output();
    assertEquals(pr.code, 0, new TextDecoder().decode(pr.stderr));
    const lines = new TextDecoder().decode(pr.stdout).trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(lines.map((l) => l.name), ["clip_08", "clip_09", "clip_10", "clip_11", "clip"]);
    for (const l of lines) {
      assertEquals(l.top.map((c: { class: string }) => c.class).sort(), ["class 0", "class 1"]);
      const total = l.top.reduce((a: number, c: { prob: number }) => a + c.prob, 0);
      assert(Math.abs(total - 1) < 1e-4, `${l.name}: probabilities sum to ${total}`);
    }
    // the .npy clip is the same sequence as clip_08, so it gets the same probabilities
    assertEquals(lines[4].top, lines[0].top);
    await Deno.remove(dir, { recursive: true });
  },
);
