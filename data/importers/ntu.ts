// NTU RGB+D `.skeleton` files -> SkeletonRecord: 3D camera-space joints (metres) and the 2D
// colour-image coordinates (1920x1080 pixels) of the same joints, bodies selected as pyskl
// does, splits from the file name (../shared/spec/method.md section 1).
import { DataError, type SkeletonRecord } from "../schema.ts";

export const NTU60_XSUB_TRAIN = [
  1,
  2,
  4,
  5,
  8,
  9,
  13,
  14,
  15,
  16,
  17,
  18,
  19,
  25,
  27,
  28,
  31,
  34,
  35,
  38,
];
// NTU120 cross-subject training performers (Liu et al., TPAMI 2019).
export const NTU120_XSUB_TRAIN = [
  ...NTU60_XSUB_TRAIN,
  45,
  46,
  47,
  49,
  50,
  52,
  53,
  54,
  55,
  56,
  57,
  58,
  59,
  70,
  74,
  78,
  80,
  81,
  82,
  83,
  84,
  85,
  86,
  89,
  91,
  92,
  93,
  94,
  95,
  97,
  98,
  100,
  103,
];

export const NTU60_CLASSES = [
  "drink water",
  "eat meal/snack",
  "brushing teeth",
  "brushing hair",
  "drop",
  "pickup",
  "throw",
  "sitting down",
  "standing up",
  "clapping",
  "reading",
  "writing",
  "tear up paper",
  "wear jacket",
  "take off jacket",
  "wear a shoe",
  "take off a shoe",
  "wear on glasses",
  "take off glasses",
  "put on a hat/cap",
  "take off a hat/cap",
  "cheer up",
  "hand waving",
  "kicking something",
  "reach into pocket",
  "hopping",
  "jump up",
  "make a phone call",
  "playing with phone/tablet",
  "typing on a keyboard",
  "pointing to something with finger",
  "taking a selfie",
  "check time (from watch)",
  "rub two hands together",
  "nod head/bow",
  "shake head",
  "wipe face",
  "salute",
  "put the palms together",
  "cross hands in front",
  "sneeze/cough",
  "staggering",
  "falling",
  "touch head (headache)",
  "touch chest",
  "touch back (backache)",
  "touch neck (neckache)",
  "nausea or vomiting",
  "use a fan",
  "punching/slapping other person",
  "kicking other person",
  "pushing other person",
  "pat on back of other person",
  "point finger at the other person",
  "hugging other person",
  "giving something to other person",
  "touch other person's pocket",
  "handshaking",
  "walking towards each other",
  "walking apart from each other",
];

export function ntuClasses(n: 60 | 120): string[] {
  return n === 60 ? NTU60_CLASSES : [
    ...NTU60_CLASSES,
    ...Array.from({ length: 60 }, (_, i) => `A${String(61 + i).padStart(3, "0")}`),
  ];
}

export interface NtuName {
  setup: number;
  camera: number;
  performer: number;
  replication: number;
  action: number;
}

const NAME = /^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$/;

export function parseNtuName(name: string): NtuName | null {
  const m = NAME.exec(name);
  if (!m) return null;
  const [setup, camera, performer, replication, action] = m.slice(1).map(Number);
  return { setup, camera, performer, replication, action };
}

/** Split memberships by the standard protocols (xsub, xview for 60; xsub, xset for 120). */
export function ntuSplits(n: NtuName, classes: 60 | 120): string[] {
  if (classes === 60) {
    return [
      NTU60_XSUB_TRAIN.includes(n.performer) ? "xsub_train" : "xsub_val",
      n.camera === 1 ? "xview_val" : "xview_train",
    ];
  }
  return [
    NTU120_XSUB_TRAIN.includes(n.performer) ? "xsub_train" : "xsub_val",
    n.setup % 2 === 0 ? "xset_train" : "xset_val",
  ];
}

interface Body {
  id: string;
  /** frame -> 25 x 3 joints, 25 x 2 colour coords, 25 tracking states */
  frames: Map<number, { xyz: Float32Array; color: Float32Array; state: Uint8Array }>;
}

/** Parses the text of one `.skeleton` file (CRLF or LF); errors name the file and line. */
export function parseSkeletonText(text: string, file: string): { frames: number; bodies: Body[] } {
  const lines = text.split(/\r?\n/);
  let at = 0;
  const fail = (p: string): never => {
    throw new DataError(file, `line ${Math.min(at, lines.length)}`, p);
  };
  const next = (): string => {
    while (at < lines.length && lines[at].trim() === "") at++;
    if (at >= lines.length) fail("truncated: the file ends early");
    return lines[at++].trim();
  };
  const int = (what: string): number => {
    const s = next();
    const v = Number(s);
    if (!Number.isInteger(v) || v < 0) {
      fail(`expected ${what} (a non-negative integer), got "${s.slice(0, 40)}"`);
    }
    return v;
  };
  const T = int("the frame count");
  const bodies = new Map<string, Body>();
  for (let f = 0; f < T; f++) {
    const nb = int(`the body count of frame ${f + 1}`);
    if (nb > 32) fail(`implausible body count ${nb} in frame ${f + 1}`);
    for (let b = 0; b < nb; b++) {
      const info = next().split(/\s+/);
      if (info.length !== 10) fail(`body info line needs 10 values, has ${info.length}`);
      const id = info[0];
      const nj = int("the joint count");
      if (nj !== 25) fail(`expected 25 joints, got ${nj}`);
      const xyz = new Float32Array(75), color = new Float32Array(50), state = new Uint8Array(25);
      for (let j = 0; j < 25; j++) {
        const v = next().split(/\s+/).map(Number);
        if (v.length !== 12 || v.some((x) => !Number.isFinite(x))) {
          fail(`joint ${j + 1} of body ${b + 1} in frame ${f + 1} needs 12 finite numbers`);
        }
        xyz[j * 3] = v[0];
        xyz[j * 3 + 1] = v[1];
        xyz[j * 3 + 2] = v[2];
        color[j * 2] = v[5];
        color[j * 2 + 1] = v[6];
        state[j] = v[11];
      }
      let body = bodies.get(id);
      if (!body) bodies.set(id, body = { id, frames: new Map() });
      body.frames.set(f, { xyz, color, state });
    }
  }
  return { frames: T, bodies: [...bodies.values()] };
}

/** Summed variance of x, y, z over the body's frames (the dataset's "main actor" measure). */
function motion(b: Body): number {
  let total = 0;
  for (let c = 0; c < 3; c++) {
    let s = 0, s2 = 0, n = 0;
    for (const { xyz } of b.frames.values()) {
      for (let j = 0; j < 25; j++) {
        const v = xyz[j * 3 + c];
        s += v;
        s2 += v * v;
        n++;
      }
    }
    total += n ? s2 / n - (s / n) ** 2 : 0;
  }
  return total;
}

/** pyskl's noise test: x-spread > 0.8 y-spread in at least 69.754% of the body's frames. */
function isNoise(b: Body): boolean {
  let wide = 0;
  for (const { xyz } of b.frames.values()) {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let j = 0; j < 25; j++) {
      x0 = Math.min(x0, xyz[j * 3]);
      x1 = Math.max(x1, xyz[j * 3]);
      y0 = Math.min(y0, xyz[j * 3 + 1]);
      y1 = Math.max(y1, xyz[j * 3 + 1]);
    }
    if (x1 - x0 > 0.8 * (y1 - y0)) wide++;
  }
  return wide / b.frames.size >= 0.69754;
}

/** Bodies kept, most motion first, at most `maxPersons` (pyskl's preprocessing). */
export function selectBodies(bodies: Body[], maxPersons = 2): Body[] {
  let kept = bodies;
  if (kept.length > 1) kept = kept.filter((b) => b.frames.size > 11);
  if (kept.length > 1) {
    const clean = kept.filter((b) => !isNoise(b));
    if (clean.length) kept = clean;
  }
  if (!kept.length) kept = bodies;
  return [...kept].sort((a, b) => motion(b) - motion(a)).slice(0, maxPersons);
}

/**
 * One `.skeleton` file to a record; null when it has no body at all (the dataset's known
 * missing samples: the caller counts and skips them).
 */
export function ntuRecord(
  text: string,
  file: string,
  name: string,
  classes: 60 | 120,
): SkeletonRecord | null {
  const meta = parseNtuName(name);
  if (!meta) throw new DataError(file, null, `file name "${name}" is not SsssCcccPpppRrrrAaaa`);
  if (meta.action < 1 || meta.action > classes) {
    throw new DataError(file, name, `action A${meta.action} outside NTU${classes}'s 1..${classes}`);
  }
  const { frames, bodies } = parseSkeletonText(text, file);
  if (frames === 0 || bodies.length === 0) return null;
  const chosen = selectBodies(bodies);
  // Trim frames before the first / after the last tracked body.
  let first = frames, last = -1;
  for (const b of chosen) {
    for (const f of b.frames.keys()) {
      first = Math.min(first, f);
      last = Math.max(last, f);
    }
  }
  const T = last - first + 1, M = chosen.length;
  const kp = new Float32Array(M * T * 75),
    kp2 = new Float32Array(M * T * 50),
    sc = new Float32Array(M * T * 25);
  chosen.forEach((b, m) => {
    for (const [f, { xyz, color, state }] of b.frames) {
      const t = f - first;
      kp.set(xyz, (m * T + t) * 75);
      kp2.set(color, (m * T + t) * 50);
      for (let j = 0; j < 25; j++) sc[(m * T + t) * 25 + j] = state[j] > 0 ? 1 : 0;
    }
  });
  return {
    name,
    label: meta.action - 1,
    subject: meta.performer,
    camera: meta.camera,
    setup: meta.setup,
    replication: meta.replication,
    frames: T,
    persons: M,
    keypoint: kp,
    score: sc,
    keypoint2d: kp2,
    imgShape: [1080, 1920],
    splits: ntuSplits(meta, classes),
  };
}
