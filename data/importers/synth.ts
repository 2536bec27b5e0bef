// The built-in procedural dataset: NTU-25 skeletons built by forward kinematics performing
// 16 parametric actions, varied by subject (bone lengths, height), camera (yaw, pitch,
// distance), speed, phase and noise. Deterministic from a seed; generated in about a
// second. Several classes differ only in the direction of time (sit down / stand up,
// approach / walk apart, raise / lower) or in the limb that moves, so a model has to
// learn motion over time, not a pose. Both the 3D camera-space joints and their 2D
// projection on a 1920x1080 image are stored, like NTU.
import { Rng } from "../../layers/init.ts";
import type { DatasetMeta, SkeletonRecord } from "../schema.ts";

export const SYNTH_CLASSES = [
  "wave right hand",
  "wave left hand",
  "clap",
  "raise both arms",
  "lower both arms",
  "punch right",
  "kick right",
  "kick left",
  "squat",
  "jump",
  "walk in place",
  "bow",
  "sit down",
  "stand up",
  "approach each other",
  "walk apart",
];

export interface SynthOptions {
  seed: number;
  subjects: number;
  /** Subjects 0..trainSubjects-1 train, the rest test. */
  trainSubjects: number;
  repetitions: number;
}

export const SYNTH_DEFAULT: SynthOptions = {
  seed: 1,
  subjects: 16,
  trainSubjects: 11,
  repetitions: 3,
};

type V3 = [number, number, number];
const add = (a: V3, b: V3): V3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const mul = (a: V3, s: number): V3 => [a[0] * s, a[1] * s, a[2] * s];

/** Unit direction of a limb hanging down, abducted sideways (side = +-1) and flexed forward. */
function dir(abduct: number, flex: number, side: number): V3 {
  const d: V3 = [
    Math.sin(abduct) * side * Math.cos(flex),
    -Math.cos(abduct) * Math.cos(flex),
    Math.sin(flex),
  ];
  const n = Math.hypot(...d);
  return mul(d, 1 / n);
}

interface Body {
  scale: number;
  upperArm: number;
  foreArm: number;
  thigh: number;
  shin: number;
  torso: number;
  shoulderW: number;
  hipW: number;
}

/** Joint angles and root motion of one pose. */
interface Pose {
  root: V3;
  bend: number; // spine flexion forward
  arm: [[number, number], [number, number]]; // [left, right] upper arm (abduct, flex)
  fore: [[number, number], [number, number]]; // forearm (abduct, flex)
  thigh: [[number, number], [number, number]];
  shin: [[number, number], [number, number]];
}

function restPose(): Pose {
  return {
    root: [0, 0, 0],
    bend: 0,
    arm: [[0.12, 0], [0.12, 0]],
    fore: [[0.1, 0.1], [0.1, 0.1]],
    thigh: [[0.05, 0], [0.05, 0]],
    shin: [[0.03, 0], [0.03, 0]],
  };
}

/** Forward kinematics: 25 NTU joints (metres, y up, z forward). */
function joints(b: Body, p: Pose): V3[] {
  const s = b.scale;
  const J: V3[] = new Array(25);
  const hip: V3 = add(p.root, [0, (b.thigh + b.shin) * s + 0.05, 0]);
  const up: V3 = [0, Math.cos(p.bend), Math.sin(p.bend)];
  J[0] = hip;
  J[1] = add(hip, mul(up, b.torso * s * 0.5));
  J[20] = add(hip, mul(up, b.torso * s));
  J[2] = add(J[20], mul(up, 0.08 * s));
  J[3] = add(J[2], mul(up, 0.14 * s));
  for (
    const [side, sh, el, wr, ha, tip, th] of [[-1, 4, 5, 6, 7, 21, 22], [
      1,
      8,
      9,
      10,
      11,
      23,
      24,
    ]] as const
  ) {
    const k = side < 0 ? 0 : 1;
    J[sh] = add(J[20], [side * b.shoulderW * s, -0.02, 0]);
    const d1 = dir(p.arm[k][0], p.arm[k][1], side), d2 = dir(p.fore[k][0], p.fore[k][1], side);
    J[el] = add(J[sh], mul(d1, b.upperArm * s));
    J[wr] = add(J[el], mul(d2, b.foreArm * s));
    J[ha] = add(J[wr], mul(d2, 0.07 * s));
    J[tip] = add(J[ha], mul(d2, 0.06 * s));
    J[th] = add(J[wr], add(mul(d2, 0.04 * s), [side * -0.03 * s, 0, 0.02 * s]));
  }
  for (const [side, hp, kn, an, ft] of [[-1, 12, 13, 14, 15], [1, 16, 17, 18, 19]] as const) {
    const k = side < 0 ? 0 : 1;
    J[hp] = add(hip, [side * b.hipW * s, -0.04, 0]);
    const d1 = dir(p.thigh[k][0], p.thigh[k][1], side), d2 = dir(p.shin[k][0], p.shin[k][1], side);
    J[kn] = add(J[hp], mul(d1, b.thigh * s));
    J[an] = add(J[kn], mul(d2, b.shin * s));
    J[ft] = add(J[an], [0, -0.04, 0.12 * s]);
  }
  return J;
}

const smooth = (x: number) => x * x * (3 - 2 * x); // 0..1 ease

/** The pose of `action` at normalised time u in [0, 1] (cycles: repeated motions). */
function actionPose(action: number, u: number, cycles: number, person: number): Pose {
  const p = restPose();
  const osc = Math.sin(2 * Math.PI * cycles * u);
  const half = 0.5 - 0.5 * Math.cos(2 * Math.PI * cycles * u); // 0..1..0
  switch (action) {
    case 0: // wave right: arm up, forearm swings
    case 1: {
      const k = action === 0 ? 1 : 0;
      p.arm[k] = [1.3, 0.3];
      p.fore[k] = [2.6 + 0.45 * osc, 0.2];
      break;
    }
    case 2: // clap: both arms forward, hands meet and part
      p.arm = [[0.25, 1.1], [0.25, 1.1]];
      p.fore = [[0.1 + 0.9 * (1 - half), 1.4], [0.1 + 0.9 * (1 - half), 1.4]];
      break;
    case 3: // raise both arms (once, slowly)
    case 4: { // lower both arms (the same motion backwards)
      const a = action === 3 ? smooth(u) : 1 - smooth(u);
      p.arm = [[0.12 + 2.7 * a, 0.1], [0.12 + 2.7 * a, 0.1]];
      p.fore = [[0.1 + 2.8 * a, 0.1], [0.1 + 2.8 * a, 0.1]];
      break;
    }
    case 5: // punch right: fast extensions forward
      p.arm[1] = [0.2, 0.6 + 0.9 * half];
      p.fore[1] = [0.1, 2.2 - 0.7 * half];
      p.arm[0] = [0.2, 0.7];
      p.fore[0] = [0.1, 2.0];
      break;
    case 6: // kick right / left: leg swings forward
    case 7: {
      const k = action === 6 ? 1 : 0;
      p.thigh[k] = [0.05, 1.2 * half];
      p.shin[k] = [0.03, 1.4 * half - 0.3 * Math.sin(Math.PI * half)];
      break;
    }
    case 8: { // squat: knees forward, hips back down
      const d = half;
      p.thigh = [[0.1, 1.2 * d], [0.1, 1.2 * d]];
      p.shin = [[0.05, -0.6 * d], [0.05, -0.6 * d]];
      p.root = [0, -0.35 * d, -0.1 * d];
      p.arm = [[0.2, 1.3 * d], [0.2, 1.3 * d]];
      p.fore = [[0.2, 1.3 * d], [0.2, 1.3 * d]];
      p.bend = 0.3 * d;
      break;
    }
    case 9: { // jump: crouch, take off, land
      const air = Math.max(0, Math.sin(2 * Math.PI * cycles * u));
      const crouch = Math.max(0, -Math.sin(2 * Math.PI * cycles * u));
      p.root = [0, 0.35 * air - 0.15 * crouch, 0];
      p.thigh = [[0.05, 0.6 * crouch], [0.05, 0.6 * crouch]];
      p.shin = [[0.03, -0.5 * crouch], [0.03, -0.5 * crouch]];
      p.arm = [[0.3 + 1.8 * air, 0.2], [0.3 + 1.8 * air, 0.2]];
      break;
    }
    case 10: // walk in place: alternating legs and arms
      p.thigh = [[0.05, 0.5 * Math.max(0, osc)], [0.05, 0.5 * Math.max(0, -osc)]];
      p.shin = [[0.03, -0.5 * Math.max(0, osc)], [0.03, -0.5 * Math.max(0, -osc)]];
      p.arm = [[0.1, -0.4 * osc], [0.1, 0.4 * osc]];
      p.fore = [[0.1, -0.3 * osc + 0.3], [0.1, 0.3 * osc + 0.3]];
      break;
    case 11: // bow
      p.bend = 0.9 * half;
      p.arm = [[0.1, 0.5 * half], [0.1, 0.5 * half]];
      break;
    case 12: // sit down (once) / stand up (the reverse)
    case 13: {
      const d = action === 12 ? smooth(u) : 1 - smooth(u);
      p.thigh = [[0.1, 1.5 * d], [0.1, 1.5 * d]];
      p.shin = [[0.05, 0.05 * d], [0.05, 0.05 * d]];
      p.root = [0, -0.45 * d, -0.35 * d];
      p.bend = 0.25 * Math.sin(Math.PI * d);
      break;
    }
    case 14: // approach each other / walk apart: two persons, along x
    case 15: {
      const d = action === 14 ? smooth(u) : 1 - smooth(u);
      const side = person === 0 ? -1 : 1;
      p.root = [side * (1.2 - 0.85 * d), 0, 0];
      const step = Math.sin(2 * Math.PI * 3 * u);
      p.thigh = [[0.05, 0.4 * Math.max(0, step)], [0.05, 0.4 * Math.max(0, -step)]];
      p.shin = [[0.03, -0.4 * Math.max(0, step)], [0.03, -0.4 * Math.max(0, -step)]];
      break;
    }
  }
  return p;
}

const TWO_PERSON = new Set([14, 15]);
const CAMERA = { f: 1000, cx: 960, cy: 540 };

/** Generates the dataset's records, deterministically from options.seed. */
export function* synthRecords(o: SynthOptions = SYNTH_DEFAULT): Generator<SkeletonRecord> {
  const rng = new Rng(o.seed);
  const bodies: Body[] = Array.from({ length: o.subjects }, () => {
    const j = () => 1 + (rng.uniform() - 0.5) * 0.16;
    return {
      scale: 0.85 + rng.uniform() * 0.3,
      upperArm: 0.29 * j(),
      foreArm: 0.25 * j(),
      thigh: 0.43 * j(),
      shin: 0.42 * j(),
      torso: 0.5 * j(),
      shoulderW: 0.18 * j(),
      hipW: 0.1 * j(),
    };
  });
  for (let s = 0; s < o.subjects; s++) {
    for (let a = 0; a < SYNTH_CLASSES.length; a++) {
      for (let rep = 0; rep < o.repetitions; rep++) {
        const camera = 1 + ((s + a + rep) % 3);
        const yaw = (camera - 2) * 0.5 + (rng.uniform() - 0.5) * 0.3;
        const pitch = (rng.uniform() - 0.5) * 0.2;
        const dist = 2.8 + rng.uniform() * 1.2;
        const frames = Math.round(40 + rng.uniform() * 50);
        const cycles = 1 + Math.floor(rng.uniform() * 3);
        const phase = rng.uniform() * 0.25;
        const noise = 0.005 + rng.uniform() * 0.01;
        const persons = TWO_PERSON.has(a) ? 2 : 1;
        const kp = new Float32Array(persons * frames * 75),
          kp2 = new Float32Array(persons * frames * 50);
        const score = new Float32Array(persons * frames * 25).fill(1);
        const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
        for (let m = 0; m < persons; m++) {
          const body = bodies[(s + m * 7) % o.subjects];
          for (let t = 0; t < frames; t++) {
            const u = Math.min(
              1,
              Math.max(
                0,
                (t / (frames - 1)) * (1 - phase) +
                  (TWO_PERSON.has(a) || a === 3 || a === 4 || a === 12 || a === 13 ? 0 : phase),
              ),
            );
            const J = joints(body, actionPose(a, u, cycles, m));
            for (let j = 0; j < 25; j++) {
              // world (x right, y up, z forward toward the camera) -> camera space, then noise
              let [x, y, z] = J[j];
              [x, z] = [cy * x + sy * z, -sy * x + cy * z];
              [y, z] = [cp * y - sp * z, sp * y + cp * z];
              const X = x + rng.normal() * noise,
                Y = y - 0.9 + rng.normal() * noise,
                Z = dist - z + rng.normal() * noise;
              const o3 = ((m * frames + t) * 25 + j) * 3, o2 = ((m * frames + t) * 25 + j) * 2;
              kp[o3] = X;
              kp[o3 + 1] = Y;
              kp[o3 + 2] = Z;
              kp2[o2] = CAMERA.f * X / Z + CAMERA.cx;
              kp2[o2 + 1] = -CAMERA.f * Y / Z + CAMERA.cy;
            }
          }
        }
        const name = `S${String(s + 1).padStart(3, "0")}C${String(camera).padStart(3, "0")}R${
          String(rep + 1).padStart(3, "0")
        }A${String(a + 1).padStart(3, "0")}`;
        yield {
          name,
          label: a,
          subject: s + 1,
          camera,
          setup: 1,
          replication: rep + 1,
          frames,
          persons,
          keypoint: kp,
          score,
          keypoint2d: kp2,
          imgShape: [1080, 1920],
          splits: [s < o.trainSubjects ? "train" : "val"],
        };
      }
    }
  }
}

/** Mirror images: wave right <-> wave left, kick right <-> kick left (the rest are symmetric,
 * except punch right, whose mirror is not a class: it keeps its label). */
export const SYNTH_FLIP_LABELS = SYNTH_CLASSES.map((
  _,
  k,
) => (k === 0 ? 1 : k === 1 ? 0 : k === 6 ? 7 : k === 7 ? 6 : k));

export function synthMeta(): DatasetMeta {
  return {
    dataset: "synth",
    layout: "ntu25",
    channels: 3,
    classes: SYNTH_CLASSES,
    keypointDtype: "f32",
    batchSize: 64,
    flipLabels: SYNTH_FLIP_LABELS,
  };
}
