// GPU heatmaps against the reference renderer (<= 1e-5) and against PoseConv3D's formula;
// flips swap the layout's left/right channels; sampling follows pyskl's rules.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { asFloat32, readSafetensors } from "../io/safetensors.ts";
import { COCO17, flipPermutation, KINECT20, limbFlipPermutation, NTU25 } from "../data/layouts.ts";
import {
  alignedClip2D,
  type Clip2D,
  clipRotation,
  cropScale,
  flipClip,
  gatherClip2D,
  type KeypointOptions,
  NO_AUGMENT,
  randomMove,
  sampleClip,
  sampleFrames,
  transformClip,
} from "../data/pipeline.ts";
import { ntuRecord } from "../data/importers/ntu.ts";
import { HeatmapRenderer, renderHeatmaps } from "../kernels/heatmap.ts";
import { heatmapReference } from "../kernels/heatmap_reference.ts";
import { Rng } from "../layers/init.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { dataTest } from "./datasets.ts";
import { assertClose, gpuTest, readF32 } from "./helpers.ts";

async function gpuRender(
  rt: Runtime,
  clips: Clip2D[],
  spec: {
    size: number;
    sigma: number;
    joints: boolean;
    limbs: readonly (readonly [number, number])[];
  },
) {
  const c0 = clips[0];
  const n = clips.length,
    m = Math.max(...clips.map((c) => c.persons)),
    t = c0.frames,
    v = c0.joints;
  const xy = new Float32Array(n * m * t * v * 2), sc = new Float32Array(n * m * t * v);
  clips.forEach((c, i) => {
    xy.set(c.xy, i * m * t * v * 2);
    sc.set(c.score, i * m * t * v);
  });
  const out = rt.tidy(() =>
    renderHeatmaps(rt, rt.tensor(xy, [n, m, t, v, 2]), rt.tensor(sc, [n, m, t, v]), spec)
  );
  const r = await readF32(rt, out);
  rt.dispose(out);
  return r;
}

function randomClip(
  rng: Rng,
  persons: number,
  frames: number,
  joints: number,
  size: number,
): Clip2D {
  const xy = new Float32Array(persons * frames * joints * 2),
    score = new Float32Array(persons * frames * joints);
  for (let i = 0; i < score.length; i++) {
    // some keypoints off the image, some with tiny or zero scores
    xy[i * 2] = rng.uniform() * (size + 8) - 4;
    xy[i * 2 + 1] = rng.uniform() * (size + 8) - 4;
    score[i] = rng.uniform() < 0.1 ? 0.0005 : rng.uniform();
  }
  return { persons, frames, joints, xy, score, width: size, height: size };
}

gpuTest(
  "heatmap: GPU equals the reference (joints, limbs, 2 persons, off-image points)",
  async (rt) => {
    const rng = new Rng(3);
    for (
      const [layout, size, sigma] of [[COCO17, 56, 0.6], [NTU25, 32, 0.6], [
        KINECT20,
        18,
        1.3,
      ]] as const
    ) {
      const clips = [
        randomClip(rng, 2, 5, layout.joints.length, size),
        randomClip(rng, 2, 5, layout.joints.length, size),
      ];
      for (const [joints, limbs] of [[true, false], [false, true], [true, true]]) {
        const spec = { size, sigma, joints, limbs };
        const got = await gpuRender(rt, clips, {
          size,
          sigma,
          joints,
          limbs: limbs ? layout.limbs : [],
        });
        const want = new Float32Array(got.length);
        let at = 0;
        for (const c of clips) {
          const r = heatmapReference(c, layout, spec);
          want.set(r, at);
          at += r.length;
        }
        assertClose(`${layout.name} S=${size} joints=${joints} limbs=${limbs}`, got, want, {
          atol: 1e-5,
          rtol: 0,
        });
        assert(want.some((v) => v > 0.5), "the test renders something");
      }
    }
  },
);

gpuTest("heatmap: a single joint follows PoseConv3D's formula and window exactly", async (rt) => {
  const mu = [10.3, 20.7], s = 0.8, sigma = 0.6, S = 32;
  const clip: Clip2D = {
    persons: 1,
    frames: 1,
    joints: 17,
    xy: new Float32Array(34),
    score: new Float32Array(17),
    width: S,
    height: S,
  };
  clip.xy[0] = mu[0];
  clip.xy[1] = mu[1];
  clip.score[0] = s;
  const got = await gpuRender(rt, [clip], { size: S, sigma, joints: true, limbs: [] });
  // window: x in [trunc(10.3 - 1.8), trunc(10.3 + 1.8)] = [8, 12], y in [18, 22]
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const inside = x >= 8 && x <= 12 && y >= 18 && y <= 22;
      const want = inside
        ? Math.exp(-((x - mu[0]) ** 2 + (y - mu[1]) ** 2) / (2 * sigma * sigma)) * s
        : 0;
      const v = got[y * S + x];
      assert(Math.abs(v - want) <= 1e-6, `pixel (${x}, ${y}): ${v} vs ${want}`);
    }
  }
  assert(got.slice(S * S).every((v) => v === 0), "other channels empty");
});

dataTest(
  "heatmap: real NTU clip, train and test geometry, GPU = reference",
  ["ntu60-samples"],
  async (dir) => {
    const { runtime } = await import("./helpers.ts");
    const rt = await runtime();
    const name = "S001C003P008R002A058";
    const r = ntuRecord(await Deno.readTextFile(join(dir, `${name}.skeleton`)), name, name, 60)!;
    const rng = new Rng(9);
    for (const train of [true, false]) {
      const frames = sampleFrames(r.frames, 48, 2, rng, !train);
      const clips = frames.map((f) => {
        const c = gatherClip2D(r, 25, 3, f);
        transformClip(c, { size: 56, train, flip: train, layout: NTU25, augment: NO_AUGMENT, rng });
        return c;
      });
      const spec = { size: 56, sigma: 0.6, joints: true, limbs: true };
      const got = await gpuRender(rt, clips, { ...spec, limbs: NTU25.limbs });
      const want = new Float32Array(got.length);
      let at = 0;
      for (const c of clips) {
        const h = heatmapReference(c, NTU25, spec);
        want.set(h, at);
        at += h.length;
      }
      assertClose(`NTU ${name} train=${train}`, got, want, { atol: 1e-5, rtol: 0 });
      // the skeleton fills the 56x56 frame after compaction
      assert(want.filter((v) => v > 0.3).length > 1000, "rendered joints present");
    }
  },
);

Deno.test("heatmap reference: drawing into a used volume equals a fresh one", () => {
  const rng = new Rng(11);
  const spec = { size: 28, sigma: 0.6, joints: true, limbs: true };
  const [a, b] = [randomClip(rng, 2, 3, 17, 28), randomClip(rng, 2, 3, 17, 28)];
  const fresh = heatmapReference(b, COCO17, spec);
  const volume = heatmapReference(a, COCO17, spec);
  assert(volume.some((v, i) => v !== fresh[i]), "the two clips draw differently");
  const reused = heatmapReference(b, COCO17, spec, volume);
  assert(reused === volume, "draws into the given volume");
  assertEquals([...reused], [...fresh]);
  assertThrows(() => heatmapReference(b, COCO17, spec, new Float32Array(5)), RangeError);
});

Deno.test("flip: left/right joints and limbs swap, x mirrors", () => {
  for (const layout of [NTU25, COCO17, KINECT20]) {
    const perm = flipPermutation(layout);
    for (const [a, b] of layout.flipPairs) assertEquals([perm[a], perm[b]], [b, a]);
    assertEquals(perm.filter((p, i) => p !== i).length, layout.flipPairs.length * 2);
    const lp = limbFlipPermutation(layout);
    assertEquals(
      [...lp].sort((x, y) => x - y),
      layout.limbs.map((_, i) => i),
      `${layout.name} limb permutation`,
    );
  }
  const rng = new Rng(1);
  const c = randomClip(rng, 1, 2, 17, 56);
  const before = { xy: c.xy.slice(), score: c.score.slice() };
  flipClip(c, COCO17);
  // left wrist (9) after the flip is the mirrored right wrist (10) from before
  for (let t = 0; t < 2; t++) {
    const src = t * 17 + 10, dst = t * 17 + 9;
    assert(Math.abs(c.xy[dst * 2] - (56 - before.xy[src * 2])) < 1e-4, "x mirrored");
    assertEquals(c.xy[dst * 2 + 1], before.xy[src * 2 + 1]);
    assertEquals(c.score[dst], before.score[src]);
  }
});

gpuTest("flip: the flipped volume's left channels are the mirrored right channels", async (rt) => {
  const rng = new Rng(4);
  const c = randomClip(rng, 1, 1, 17, 24);
  for (let i = 0; i < c.score.length; i++) c.score[i] = 1;
  // keep points inside so mirroring is exact
  for (let i = 0; i < c.xy.length; i++) c.xy[i] = 3 + (c.xy[i] % 17);
  const f = { ...c, xy: c.xy.slice(), score: c.score.slice() };
  flipClip(f, COCO17);
  const spec = { size: 24, sigma: 0.6, joints: true, limbs: [] as const };
  const a = await gpuRender(rt, [c], spec), b = await gpuRender(rt, [f], spec);
  // Channel 9 (left wrist) of the flipped clip is channel 10 of the original mirrored in x
  // (pixel x <-> 24 - x). pyskl's windows truncate toward zero, so they are not mirror
  // symmetric: an edge pixel (3 sigma away) may be drawn on one side only, worth at most
  // exp(-4.5) = 0.011. Unswapped channels would differ by up to 1.
  const edge = Math.exp(-4.5) + 1e-6;
  let compared = 0, unswapped = 0;
  for (let y = 0; y < 24; y++) {
    for (let x = 1; x < 24; x++) {
      const vb = b[(9 * 24 + y) * 24 + x], va = a[(10 * 24 + y) * 24 + (24 - x)];
      assert(Math.abs(vb - va) <= edge, `mirror at (${x}, ${y}): ${vb} vs ${va}`);
      compared += va > 0.1 ? 1 : 0;
      unswapped = Math.max(unswapped, Math.abs(vb - a[(9 * 24 + y) * 24 + (24 - x)]));
    }
  }
  assert(compared > 3, "the wrist is rendered");
  assert(unswapped > 0.5, "without the swap the channels would differ");
});

Deno.test("sampling: pyskl's three regimes", () => {
  const rng = new Rng(2);
  const short = sampleClip(10, 48, rng);
  assertEquals(short.length, 48);
  assert(
    short.every((v, i) => i === 0 || v === (short[i - 1] + 1) % 10),
    "short: consecutive, wrapping",
  );
  const mid = sampleClip(70, 48, rng);
  assertEquals(new Set(mid).size, 48);
  assert(mid.every((v, i) => i === 0 || v > mid[i - 1]), "mid: distinct, in order");
  const long = sampleClip(480, 48, rng);
  assert(long.every((v, i) => v >= i * 10 && v < (i + 1) * 10), "long: one frame per segment");
  const test1 = sampleFrames(480, 48, 10, new Rng(1), true),
    test2 = sampleFrames(480, 48, 10, new Rng(99), true);
  assertEquals(test1, test2, "test clips do not depend on the training RNG");
  assertEquals(test1.length, 10);
  assert(test1[0].every((v, i) => v === i * 10 + 5), "first test clip: segment middles");
});

gpuTest(
  "heatmap renderer: erasing the previous batch's windows equals a fresh render",
  async (rt) => {
    const rng = new Rng(8);
    for (const limbs of [false, true]) {
      const spec = { size: 28, sigma: 0.6, joints: true, limbs: limbs ? COCO17.limbs : [] };
      const r = new HeatmapRenderer(rt, spec);
      const batches = [0, 1, 2].map(
        () => [randomClip(rng, 2, 3, 17, 28), randomClip(rng, 2, 3, 17, 28)],
      );
      for (const clips of batches) {
        const xy = new Float32Array(2 * clips[0].xy.length),
          sc = new Float32Array(2 * clips[0].score.length);
        clips.forEach((c, i) => {
          xy.set(c.xy, i * c.xy.length);
          sc.set(c.score, i * c.score.length);
        });
        const got = await readF32(rt, r.render(xy, sc, [2, 2, 3, 17]));
        const fresh = await gpuRender(rt, clips, spec);
        assertClose(`renderer limbs=${limbs}`, got, fresh, { atol: 0, rtol: 0 });
      }
      r.dispose();
    }
  },
);

Deno.test("flip: a flipped clip of an asymmetric class takes its mirror class's label", async () => {
  const { synthMeta, synthRecords } = await import("../data/importers/synth.ts");
  const { hostBatch, DEFAULT_INPUT } = await import("../data/batches.ts");
  const recs = [...synthRecords({ seed: 1, subjects: 2, trainSubjects: 1, repetitions: 1 })].filter(
    (r) => r.subject === 1,
  );
  const meta = synthMeta();
  const byLabel = (k: number) => recs.find((r) => r.label === k)!;
  const spec = { ...DEFAULT_INPUT, clipLen: 8, size: 16 };
  const mode = (p: number) => ({
    train: true,
    clips: 1,
    flipTest: false,
    flipProb: p,
    augment: NO_AUGMENT,
  });
  const flipped = hostBatch([byLabel(0), byLabel(6), byLabel(2)], meta, spec, mode(1), new Rng(1));
  assertEquals(
    Array.from(flipped.labels),
    [1, 7, 2],
    "wave right -> wave left, kick right -> kick left, clap stays",
  );
  const kept = hostBatch([byLabel(0), byLabel(6)], meta, spec, mode(0), new Rng(1));
  assertEquals(Array.from(kept.labels), [0, 6]);
  // Keypoint inputs flip too (they used to ignore it and keep the label).
  const kp = { ...spec, kind: "kp3d" as const };
  const kpFlipped = hostBatch([byLabel(0), byLabel(2)], meta, kp, mode(1), new Rng(1));
  assertEquals(Array.from(kpFlipped.labels), [1, 2]);
  const kpKept = hostBatch([byLabel(0), byLabel(2)], meta, kp, mode(0), new Rng(1));
  assert(kpFlipped.kp!.some((v, i) => v !== kpKept.kp![i]), "flipped keypoints differ");
});

Deno.test("keypoint flip: the mirror image, left and right swapped; twice is the identity", async () => {
  const { keypointInput } = await import("../data/pipeline.ts");
  const { synthMeta } = await import("../data/importers/synth.ts");
  const { hostBatch, DEFAULT_INPUT, TEST_MODE } = await import("../data/batches.ts");
  const rec = await oneSynthRecord();
  const frames = [0, 4, 8], T = frames.length, V = NTU25.joints.length;
  const perm = flipPermutation(NTU25);
  const j = (n: string) => NTU25.joints.indexOf(n);
  for (const kind of ["kp2d", "kp3d"] as const) {
    const o: KeypointOptions = { ...kp3d, kind }, r = rec;
    const x = keypointInput(r, frames, o), f = keypointInput(r, frames, { ...o, flip: true });
    for (let t = 0; t < T; t++) {
      const [a, b] = [(t * V + j("left_wrist")) * 3, (t * V + j("right_wrist")) * 3];
      assertEquals([f[a], f[a + 1], f[a + 2]], [-x[b], x[b + 1], x[b + 2]], `${kind} frame ${t}`);
    }
    const twice = mirrorAgain(f, perm);
    assert(twice.every((v, i) => v === x[i]), `${kind}: flipping twice is the identity`);
    // Bones and motion of the mirror image are the mirror image of the bones and motion.
    for (const extra of [{ bones: true }, { motion: true }, { bones: true, motion: true }]) {
      const plain = keypointInput(r, frames, { ...o, ...extra });
      const flipped = keypointInput(r, frames, { ...o, ...extra, flip: true });
      const gap = mirrorAgain(flipped, perm).reduce(
        (m, v, i) => Math.max(m, Math.abs(v - plain[i])),
        0,
      );
      assert(gap < 1e-6, `${kind} ${JSON.stringify(extra)}: mirrored stream differs by ${gap}`);
    }
  }
  // A flipped test view is the flipped input, not a copy of the plain one.
  const spec = { ...DEFAULT_INPUT, kind: "kp3d" as const, clipLen: 8, persons: 1 };
  const hb = hostBatch([rec], synthMeta(), spec, { ...TEST_MODE, flipTest: true }, new Rng(1));
  const n = hb.kp!.length / 2;
  const plainView = hb.kp!.subarray(0, n), flipView = hb.kp!.subarray(n);
  assert(
    mirrorAgain(flipView, perm).every((v, i) => v === plainView[i]),
    "view 2 is view 1 mirrored",
  );
  assert(flipView.some((v, i) => v !== plainView[i]), "the two views differ");
});

/** The test's own mirror of (..., V, 3) rows: x negated, joint j from perm[j]. */
function mirrorAgain(x: Float32Array, perm: number[]): Float32Array {
  const v = perm.length, out = new Float32Array(x.length);
  for (let i = 0; i < x.length / 3; i++) {
    const src = (i - (i % v) + perm[i % v]) * 3;
    out[i * 3] = -x[src];
    out[i * 3 + 1] = x[src + 1];
    out[i * 3 + 2] = x[src + 2];
  }
  return out;
}

/** The first record of a small synthetic dataset (3D joints, ntu25). */
async function oneSynthRecord() {
  const { synthRecords } = await import("../data/importers/synth.ts");
  return [...synthRecords({ seed: 2, subjects: 1, trainSubjects: 1, repetitions: 1 })][0];
}

/** NTU's 3D joints of one person, the keypoint tests' input. */
const kp3d: KeypointOptions = {
  joints: NTU25.joints.length,
  channels: 3,
  kind: "kp3d",
  layout: NTU25,
  persons: 1,
};

Deno.test("kp3d augmentation: a rotation keeps each joint's distance from the root", async () => {
  const { keypointInput } = await import("../data/pipeline.ts");
  const rec = await oneSynthRecord();
  const frames = [0, 3, 6, 9];
  const plain = keypointInput(rec, frames, kp3d);
  const a = { rotation: 30, noise: 0, shift: 0 };
  const rot = keypointInput(rec, frames, { ...kp3d, augment: { a, rng: new Rng(5) } });
  let moved = 0;
  for (let i = 0; i < plain.length; i += 3) {
    const n0 = Math.hypot(plain[i], plain[i + 1], plain[i + 2]);
    const n1 = Math.hypot(rot[i], rot[i + 1], rot[i + 2]);
    assert(Math.abs(n0 - n1) < 1e-5, `joint ${i / 3}: |p| ${n0} -> ${n1}`);
    moved = Math.max(moved, Math.abs(plain[i] - rot[i]));
  }
  assert(moved > 0.01, "the rotation moves the joints");
});

Deno.test("kp3d view alignment: a clip seen from any camera gives the same input", async () => {
  const { keypointInput } = await import("../data/pipeline.ts");
  const rec = await oneSynthRecord();
  const frames = [0, 3, 6, 9];
  // The same clip turned by a rotation about a tilted axis (a camera elsewhere).
  const [c, s] = [Math.cos(1.1), Math.sin(1.1)], [c2, s2] = [Math.cos(0.4), Math.sin(0.4)];
  const R = [c, 0, s, s2 * s, c2, -s2 * c, -c2 * s, s2, c2 * c]; // Rx(0.4) Ry(1.1)
  const kp = rec.keypoint.slice();
  for (let i = 0; i < kp.length; i += 3) {
    const [x, y, z] = [rec.keypoint[i], rec.keypoint[i + 1], rec.keypoint[i + 2]];
    if (x === 0 && y === 0 && z === 0) continue;
    for (let k = 0; k < 3; k++) kp[i + k] = R[3 * k] * x + R[3 * k + 1] * y + R[3 * k + 2] * z;
  }
  const turned = { ...rec, keypoint: kp };
  const input = (r: typeof rec, align: boolean) =>
    keypointInput(r, frames, { ...kp3d, viewAlign: align });
  const a = input(rec, true), b = input(turned, true);
  const gap = (p: Float32Array, q: Float32Array) =>
    p.reduce((m, v, i) => Math.max(m, Math.abs(v - q[i])), 0);
  assert(gap(a, b) < 1e-4, `aligned inputs differ by ${gap(a, b)}`);
  assert(gap(input(rec, false), input(turned, false)) > 0.1, "unaligned inputs show the camera");
  // Spine up (+y): the shoulders sit above the hips, not beside them.
  const j = (n: string) => NTU25.joints.indexOf(n);
  const at = (k: number, ch: number) => a[k * 3 + ch];
  const up = [0, 1, 2].map((ch) =>
    at(j("left_shoulder"), ch) + at(j("right_shoulder"), ch) - at(j("left_hip"), ch) -
    at(j("right_hip"), ch)
  );
  assert(up[1] > 10 * Math.max(Math.abs(up[0]), Math.abs(up[2])), `spine ${up}`);
});

Deno.test("bone stream: each joint minus its parent, the root zero; the tree reaches every joint", async () => {
  const { keypointInput } = await import("../data/pipeline.ts");
  const { boneParents } = await import("../data/layouts.ts");
  // Walking the limbs from the root: the limb tables list pairs in either order.
  const j = (n: string) => KINECT20.joints.indexOf(n);
  const kp = boneParents(KINECT20);
  assertEquals([kp[j("left_wrist")], kp[j("spine")], kp[j("hip_center")]], [
    j("left_elbow"),
    j("hip_center"),
    j("hip_center"),
  ]);
  const ntu = boneParents(NTU25);
  const n = (s: string) => NTU25.joints.indexOf(s);
  assertEquals(ntu[n("spine_mid")], n("spine_base"));
  for (const p of [ntu, boneParents(COCO17)]) assert(p.every((x) => x >= 0));
  const rec = await oneSynthRecord();
  const frames = [0, 5, 9], V = NTU25.joints.length;
  const a = { rotation: 20, noise: 0, shift: 0 };
  const joints = keypointInput(rec, frames, { ...kp3d, augment: { a, rng: new Rng(3) } });
  const bones = keypointInput(rec, frames, {
    ...kp3d,
    augment: { a, rng: new Rng(3) },
    bones: true,
  });
  let big = 0;
  for (let f = 0; f < frames.length; f++) {
    for (let v = 0; v < V; v++) {
      for (let c = 0; c < 3; c++) {
        const want = v === NTU25.root
          ? 0
          : joints[(f * V + v) * 3 + c] - joints[(f * V + ntu[v]) * 3 + c];
        const got = bones[(f * V + v) * 3 + c];
        assert(
          Math.abs(got - want) < 1e-6,
          `frame ${f} joint ${v} channel ${c}: ${got} vs ${want}`,
        );
        big = Math.max(big, Math.abs(got));
      }
    }
  }
  assert(big > 0.05, "bones are not all zero");
});

Deno.test("motion stream: each joint's (or bone's) step to the next frame, the last frame zero", async () => {
  const { keypointInput } = await import("../data/pipeline.ts");
  const rec = await oneSynthRecord();
  const frames = [0, 4, 8, 12], V = NTU25.joints.length, T = frames.length;
  const input = (bones: boolean, motion: boolean) =>
    keypointInput(rec, frames, { ...kp3d, bones, motion });
  for (const bones of [false, true]) {
    const x = input(bones, false), dx = input(bones, true);
    let big = 0;
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < V * 3; i++) {
        const want = t + 1 < T ? x[(t + 1) * V * 3 + i] - x[t * V * 3 + i] : 0;
        const got = dx[t * V * 3 + i];
        assert(
          Math.abs(got - want) < 1e-6,
          `bones ${bones}, frame ${t}, value ${i}: ${got} vs ${want}`,
        );
        big = Math.max(big, Math.abs(got));
      }
    }
    assert(big > 1e-3, "the clip moves");
  }
});

Deno.test("pipeline: test views are drawn at the training crops' median scale", () => {
  // A person 300 x 600 pixels in a 1920 x 1080 image, joints spread over the box.
  const rng = new Rng(21);
  const make = (): Clip2D => {
    const c = randomClip(new Rng(5), 1, 4, 17, 1);
    for (let i = 0; i < c.xy.length; i += 2) {
      c.xy[i] = 800 + (c.xy[i] + 4) / 9 * 300;
      c.xy[i + 1] = 200 + (c.xy[i + 1] + 4) / 9 * 600;
      c.score[i / 2] = 1;
    }
    return { ...c, width: 1920, height: 1080 };
  };
  const span = (c: Clip2D) => {
    let lo = Infinity, hi = -Infinity;
    for (let i = 1; i < c.xy.length; i += 2) {
      (lo = Math.min(lo, c.xy[i])), (hi = Math.max(hi, c.xy[i]));
    }
    return hi - lo;
  };
  for (const size of [56, 32]) {
    const o = { size, flip: false, layout: COCO17, augment: NO_AUGMENT, rng };
    const spans = Array.from({ length: 401 }, () => {
      const c = make();
      transformClip(c, { ...o, train: true });
      return span(c);
    }).sort((a, b) => a - b);
    const test = make();
    transformClip(test, { ...o, train: false });
    const ratio = span(test) / spans[200];
    assert(Math.abs(ratio - 1) < 0.04, `size ${size}: test span / median training span = ${ratio}`);
    // the whole skeleton stays inside the test view
    assert(test.xy.every((v) => v >= 0 && v <= size), `size ${size}: test view cuts the skeleton`);
  }
});

Deno.test("pipeline: a view-aligned 3D clip is the same pseudo-image from any camera", () => {
  const rng = new Rng(4);
  const T = 3, V = KINECT20.joints.length;
  const body = new Float32Array(T * V * 3).map((_, i) =>
    (i % 3 === 2 ? 3 : 0) + rng.normal() * 0.3
  );
  const record = (kp: Float32Array) => ({
    name: "a01_s01_e00_v01",
    label: 0,
    subject: 1,
    camera: 1,
    setup: 0,
    replication: 0,
    frames: T,
    persons: 1,
    keypoint: kp,
    score: null,
    keypoint2d: null,
    imgShape: null,
    splits: [],
  });
  // The same body seen from a camera turned 70 degrees about the vertical and tilted 15.
  const [a, b] = [70 * Math.PI / 180, 15 * Math.PI / 180];
  const turned = body.slice();
  for (let i = 0; i < T * V; i++) {
    const [x, y, z] = [body[i * 3], body[i * 3 + 1], body[i * 3 + 2]];
    const x1 = Math.cos(a) * x + Math.sin(a) * z, z1 = -Math.sin(a) * x + Math.cos(a) * z;
    turned[i * 3] = x1;
    turned[i * 3 + 1] = Math.cos(b) * y - Math.sin(b) * z1;
    turned[i * 3 + 2] = Math.sin(b) * y + Math.cos(b) * z1;
  }
  const frames = [0, 1, 2];
  const view = (kp: Float32Array) => {
    const r = record(kp);
    return alignedClip2D(r, V, frames, clipRotation(r, frames, V, KINECT20, true, undefined));
  };
  const [p, q] = [view(body), view(turned)];
  assertClose("aligned pseudo-images", q.xy, p.xy, { atol: 1e-2, rtol: 0 }); // pixels (mm)
  assert(p.score.every((s) => s === 1), "every joint present");
  // Without the alignment the two views differ.
  const plain = (kp: Float32Array) => {
    const r = record(kp);
    return alignedClip2D(r, V, frames, clipRotation(r, frames, V, KINECT20, false, undefined)).xy;
  };
  const d = plain(body).reduce((m, v, i) => Math.max(m, Math.abs(v - plain(turned)[i])), 0);
  assert(d > 50, `unaligned views differ by ${d} px`);
});

Deno.test("kp2d: MotionBERT's random_move and crop_scale match the reference's formulas", async () => {
  const st = await readSafetensors(
    fileURLToPath(new URL("./fixtures/motionbert_kp.safetensors", import.meta.url)),
  );
  for (const name of ["two_persons", "one_person_train", "wide_ratio_1"]) {
    const input = st.tensors.get(`${name}/input`)!;
    const [, T, V] = input.shape;
    const x = Float32Array.from(asFloat32(input));
    const m = asFloat32(st.tensors.get(`${name}/move`)!);
    randomMove(x, T, V, {
      angle: [m[0], m[1]],
      scale: [m[2], m[3]],
      tx: [m[4], m[5]],
      ty: [m[6], m[7]],
    });
    cropScale(x, asFloat32(st.tensors.get(`${name}/ratio`)!)[0]);
    assertClose(name, x, asFloat32(st.tensors.get(`${name}/output`)!), { atol: 2e-6, rtol: 0 });
  }
});
