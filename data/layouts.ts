// Joint layouts are values: joint names, left/right pairs (for flips), limbs (the skeleton's
// bones: limb heatmaps, bone streams), the root, and optionally the joints of the body frame
// (--view-align). The built-in ones follow the datasets and PoseConv3D
// (../shared/spec/method.md sections 1-3); any other comes from a JSON file (data/layout_file.ts)
// and travels inside the Arrow files converted with it.

export interface JointLayout {
  name: string;
  joints: readonly string[];
  /** Left/right joint pairs swapped by a horizontal flip. */
  flipPairs: readonly (readonly [number, number])[];
  /** Limbs (joint index pairs): a tree over the joints, rendered by limb heatmaps. */
  limbs: readonly (readonly [number, number])[];
  /** Root joint for centring (spine base / hip centre / mid-hip). */
  root: number;
  /**
   * Left shoulder, right shoulder, left hip, right hip: the body frame of --view-align. Absent:
   * found by those joint names, else the layout cannot be view-aligned.
   */
  bodyFrame?: readonly [number, number, number, number];
}

export type LayoutName = string;

// NTU RGB+D (Kinect v2), 0-based. Bones are the dataset's 1-based pairs minus one.
const NTU_BONES_1 = [
  [1, 2],
  [2, 21],
  [3, 21],
  [4, 3],
  [5, 21],
  [6, 5],
  [7, 6],
  [8, 7],
  [9, 21],
  [10, 9],
  [11, 10],
  [12, 11],
  [13, 1],
  [14, 13],
  [15, 14],
  [16, 15],
  [17, 1],
  [18, 17],
  [19, 18],
  [20, 19],
  [22, 8],
  [23, 8],
  [24, 12],
  [25, 12],
] as const;

export const NTU25: JointLayout = {
  name: "ntu25",
  joints: [
    "spine_base",
    "spine_mid",
    "neck",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
    "spine_shoulder",
    "left_hand_tip",
    "left_thumb",
    "right_hand_tip",
    "right_thumb",
  ],
  flipPairs: [[4, 8], [5, 9], [6, 10], [7, 11], [12, 16], [13, 17], [14, 18], [15, 19], [21, 23], [
    22,
    24,
  ]],
  limbs: NTU_BONES_1.map(([a, b]) => [a - 1, b - 1] as const),
  root: 0,
};

export const COCO17: JointLayout = {
  name: "coco17",
  joints: [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
  ],
  flipPairs: [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14], [15, 16]],
  // PoseConv3D's 17 COCO limbs
  limbs: [
    [0, 5],
    [0, 6],
    [5, 7],
    [7, 9],
    [6, 8],
    [8, 10],
    [5, 11],
    [11, 13],
    [13, 15],
    [6, 12],
    [12, 14],
    [14, 16],
    [0, 1],
    [0, 2],
    [1, 3],
    [2, 4],
    [11, 12],
  ],
  root: 11,
};

// NW-UCLA (Kinect v1), 0-based.
export const KINECT20: JointLayout = {
  name: "kinect20",
  joints: [
    "hip_center",
    "spine",
    "shoulder_center",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
  ],
  flipPairs: [[4, 8], [5, 9], [6, 10], [7, 11], [12, 16], [13, 17], [14, 18], [15, 19]],
  limbs: [
    [0, 1],
    [1, 2],
    [2, 3],
    [2, 4],
    [4, 5],
    [5, 6],
    [6, 7],
    [2, 8],
    [8, 9],
    [9, 10],
    [10, 11],
    [0, 12],
    [12, 13],
    [13, 14],
    [14, 15],
    [0, 16],
    [16, 17],
    [17, 18],
    [18, 19],
  ],
  root: 0,
};

const named = (joints: string[], limbs: [number, number][], root: number): Omit<
  JointLayout,
  "name"
> => ({ joints, flipPairs: namedFlipPairs(joints), limbs, root });

// OpenPose COCO-18 (ST-GCN's Kinetics-skeleton): COCO's joints in OpenPose's order, plus the neck.
export const OPENPOSE18: JointLayout = {
  name: "openpose18",
  ...named(
    [
      "nose",
      "neck",
      "right_shoulder",
      "right_elbow",
      "right_wrist",
      "left_shoulder",
      "left_elbow",
      "left_wrist",
      "right_hip",
      "right_knee",
      "right_ankle",
      "left_hip",
      "left_knee",
      "left_ankle",
      "right_eye",
      "left_eye",
      "right_ear",
      "left_ear",
    ],
    // ST-GCN's openpose edges
    [
      [4, 3],
      [3, 2],
      [7, 6],
      [6, 5],
      [13, 12],
      [12, 11],
      [10, 9],
      [9, 8],
      [11, 5],
      [8, 2],
      [5, 1],
      [
        2,
        1,
      ],
      [0, 1],
      [15, 0],
      [14, 0],
      [17, 15],
      [16, 14],
    ],
    1,
  ),
};

// OpenPose BODY_25: COCO-18 plus the mid-hip and the feet.
export const OPENPOSE25: JointLayout = {
  name: "openpose25",
  ...named(
    [
      ...OPENPOSE18.joints.slice(0, 8),
      "mid_hip",
      ...OPENPOSE18.joints.slice(8),
      "left_big_toe",
      "left_small_toe",
      "left_heel",
      "right_big_toe",
      "right_small_toe",
      "right_heel",
    ],
    [
      [1, 0],
      [1, 2],
      [2, 3],
      [3, 4],
      [1, 5],
      [5, 6],
      [6, 7],
      [1, 8],
      [8, 9],
      [9, 10],
      [10, 11],
      [
        8,
        12,
      ],
      [12, 13],
      [13, 14],
      [0, 15],
      [15, 17],
      [0, 16],
      [16, 18],
      [14, 19],
      [19, 20],
      [14, 21],
      [
        11,
        22,
      ],
      [22, 23],
      [11, 24],
    ],
    8,
  ),
};

// Halpe-26 (AlphaPose): COCO-17, then head, neck, hip and the feet.
export const HALPE26: JointLayout = {
  name: "halpe26",
  ...named(
    [
      ...COCO17.joints,
      "head",
      "neck",
      "hip",
      "left_big_toe",
      "right_big_toe",
      "left_small_toe",
      "right_small_toe",
      "left_heel",
      "right_heel",
    ],
    [
      [17, 18],
      [18, 0],
      [0, 1],
      [0, 2],
      [1, 3],
      [2, 4],
      [18, 5],
      [18, 6],
      [5, 7],
      [7, 9],
      [6, 8],
      [
        8,
        10,
      ],
      [18, 19],
      [19, 11],
      [19, 12],
      [11, 13],
      [13, 15],
      [12, 14],
      [14, 16],
      [15, 20],
      [15, 22],
      [
        15,
        24,
      ],
      [16, 21],
      [16, 23],
      [16, 25],
    ],
    19,
  ),
};

// Human3.6M's 17 joints (MotionBERT's order; its coco2h36m).
export const H36M17: JointLayout = {
  name: "h36m17",
  ...named(
    [
      "pelvis",
      "right_hip",
      "right_knee",
      "right_ankle",
      "left_hip",
      "left_knee",
      "left_ankle",
      "spine",
      "neck",
      "nose",
      "head",
      "left_shoulder",
      "left_elbow",
      "left_wrist",
      "right_shoulder",
      "right_elbow",
      "right_wrist",
    ],
    [
      [0, 1],
      [1, 2],
      [2, 3],
      [0, 4],
      [4, 5],
      [5, 6],
      [0, 7],
      [7, 8],
      [8, 9],
      [9, 10],
      [8, 11],
      [
        11,
        12,
      ],
      [12, 13],
      [8, 14],
      [14, 15],
      [15, 16],
    ],
    0,
  ),
};

// MediaPipe Pose's 33 landmarks.
export const MEDIAPIPE33: JointLayout = {
  name: "mediapipe33",
  ...named(
    [
      "nose",
      "left_eye_inner",
      "left_eye",
      "left_eye_outer",
      "right_eye_inner",
      "right_eye",
      "right_eye_outer",
      "left_ear",
      "right_ear",
      "left_mouth",
      "right_mouth",
      "left_shoulder",
      "right_shoulder",
      "left_elbow",
      "right_elbow",
      "left_wrist",
      "right_wrist",
      "left_pinky",
      "right_pinky",
      "left_index",
      "right_index",
      "left_thumb",
      "right_thumb",
      "left_hip",
      "right_hip",
      "left_knee",
      "right_knee",
      "left_ankle",
      "right_ankle",
      "left_heel",
      "right_heel",
      "left_foot_index",
      "right_foot_index",
    ],
    // MediaPipe's POSE_CONNECTIONS, cut to a tree rooted at the left hip
    [
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 7],
      [0, 4],
      [4, 5],
      [5, 6],
      [6, 8],
      [9, 0],
      [10, 0],
      [11, 12],
      [
        11,
        13,
      ],
      [13, 15],
      [15, 17],
      [15, 19],
      [15, 21],
      [12, 14],
      [14, 16],
      [16, 18],
      [16, 20],
      [16, 22],
      [
        11,
        23,
      ],
      [23, 24],
      [23, 25],
      [24, 26],
      [25, 27],
      [26, 28],
      [27, 29],
      [29, 31],
      [28, 30],
      [30, 32],
      [
        12,
        0,
      ],
    ],
    23,
  ),
};

/** The built-in layouts, by name. */
export const LAYOUTS: Record<string, JointLayout> = {
  ntu25: NTU25,
  coco17: COCO17,
  kinect20: KINECT20,
  openpose18: OPENPOSE18,
  openpose25: OPENPOSE25,
  halpe26: HALPE26,
  h36m17: H36M17,
  mediapipe33: MEDIAPIPE33,
};

/** Layouts known to this process: the built-ins and those registered from files. */
const REGISTRY = new Map<string, JointLayout>(Object.entries(LAYOUTS));

/** Same joints, pairs, limbs, root and body frame. */
export function sameLayout(a: JointLayout, b: JointLayout): boolean {
  const key = (l: JointLayout) =>
    JSON.stringify([l.joints, l.flipPairs, l.limbs, l.root, bodyFrameJoints(l)]);
  return key(a) === key(b);
}

/**
 * Makes a layout known by its name (a file's embedded layout, a --layout file). A different
 * layout under a name already known is refused: names identify layouts in checkpoints.
 */
export function registerLayout(l: JointLayout, source: string): JointLayout {
  const known = REGISTRY.get(l.name);
  if (known && !sameLayout(known, l)) {
    throw new Error(
      `${source}: layout "${l.name}" differs from the ${
        LAYOUTS[l.name] ? "built-in" : "already loaded"
      } layout of that name; give it another name`,
    );
  }
  if (!known) REGISTRY.set(l.name, l);
  return known ?? l;
}

/**
 * Each joint's parent in the skeleton tree (the root is its own parent), found by walking the
 * limbs outwards from the root: the limb tables list their pairs in either order.
 */
export function boneParents(layout: JointLayout): readonly number[] {
  const known = PARENTS.get(layout);
  if (known) return known;
  const V = layout.joints.length;
  // each joint's limbs, so that the walk costs joints + limbs, not joints x limbs
  const next: number[][] = Array.from({ length: V }, () => []);
  for (const [a, b] of layout.limbs) {
    next[a]?.push(b);
    next[b]?.push(a);
  }
  const parent = new Array<number>(V).fill(-1);
  parent[layout.root] = layout.root;
  const queue = [layout.root];
  for (let q = 0; q < queue.length; q++) {
    const j = queue[q];
    for (const k of next[j]) {
      if (parent[k] < 0) {
        parent[k] = j;
        queue.push(k);
      }
    }
  }
  const loose = parent.findIndex((p) => p < 0);
  if (loose >= 0) {
    throw new Error(`layout ${layout.name}: joint ${layout.joints[loose]} has no limb to the root`);
  }
  PARENTS.set(layout, parent);
  return parent;
}

/** boneParents per layout: it runs for every keypoint sample of a bone-stream batch. */
const PARENTS = new WeakMap<JointLayout, readonly number[]>();

export function layoutByName(name: string): JointLayout {
  const l = REGISTRY.get(name);
  if (!l) {
    throw new Error(
      `unknown joint layout "${name}" (built-in: ${
        Object.keys(LAYOUTS).join(", ")
      }; or a layout file, --layout FILE.json)`,
    );
  }
  return l;
}

/** The body frame's joints (left/right shoulder, left/right hip), or null when unknown. */
export function bodyFrameJoints(l: JointLayout): readonly [number, number, number, number] | null {
  if (l.bodyFrame) return l.bodyFrame;
  const idx = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"].map((n) =>
    l.joints.indexOf(n)
  );
  return idx.every((i) => i >= 0) ? idx as unknown as [number, number, number, number] : null;
}

/** Left/right pairs from the joint names: left_X with right_X. */
export function namedFlipPairs(joints: readonly string[]): [number, number][] {
  const at = new Map(joints.map((n, i) => [n, i]));
  const pairs: [number, number][] = [];
  joints.forEach((n, i) => {
    if (!n.startsWith("left_")) return;
    const j = at.get("right_" + n.slice(5));
    if (j !== undefined) pairs.push([i, j]);
  });
  return pairs;
}

/** Channel permutation that a horizontal flip applies (index i takes channel perm[i]). */
export function flipPermutation(layout: JointLayout): number[] {
  const perm = layout.joints.map((_, i) => i);
  for (const [a, b] of layout.flipPairs) {
    perm[a] = b;
    perm[b] = a;
  }
  return perm;
}

/** The same for limb channels: a limb maps to the limb joining the flipped joints. */
export function limbFlipPermutation(layout: JointLayout): number[] {
  const jp = flipPermutation(layout);
  const key = (a: number, b: number) => a < b ? `${a},${b}` : `${b},${a}`;
  const at = new Map<string, number>();
  layout.limbs.forEach(([a, b], i) => at.has(key(a, b)) || at.set(key(a, b), i));
  return layout.limbs.map(([a, b], i) => at.get(key(jp[a], jp[b])) ?? at.get(key(a, b)) ?? i);
}
