// Joint layouts: joint names, left/right pairs (for flips), and limbs (for limb heatmaps),
// as the datasets and PoseConv3D define them (../shared/spec/method.md sections 1-3).

export interface JointLayout {
  name: LayoutName;
  joints: readonly string[];
  /** Left/right joint pairs swapped by a horizontal flip. */
  flipPairs: readonly (readonly [number, number])[];
  /** Limbs (joint index pairs) rendered by limb heatmaps. */
  limbs: readonly (readonly [number, number])[];
  /** Root joint for centring (spine base / hip centre / mid-hip). */
  root: number;
}

export type LayoutName = "ntu25" | "coco17" | "kinect20";

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

export const LAYOUTS: Record<LayoutName, JointLayout> = {
  ntu25: NTU25,
  coco17: COCO17,
  kinect20: KINECT20,
};

/**
 * Each joint's parent in the skeleton tree (the root is its own parent), found by walking the
 * limbs outwards from the root: the limb tables list their pairs in either order.
 */
export function boneParents(layout: JointLayout): readonly number[] {
  const known = PARENTS.get(layout);
  if (known) return known;
  const V = layout.joints.length;
  const parent = new Array<number>(V).fill(-1);
  parent[layout.root] = layout.root;
  const queue = [layout.root];
  while (queue.length) {
    const j = queue.shift()!;
    for (const [a, b] of layout.limbs) {
      const k = a === j ? b : b === j ? a : -1;
      if (k >= 0 && parent[k] < 0) {
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
  const l = LAYOUTS[name as LayoutName];
  if (!l) {
    throw new Error(`unknown joint layout "${name}" (known: ${Object.keys(LAYOUTS).join(", ")})`);
  }
  return l;
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
  return layout.limbs.map(([a, b]) => {
    const i = layout.limbs.findIndex(([c, d]) =>
      (c === jp[a] && d === jp[b]) || (c === jp[b] && d === jp[a])
    );
    return i < 0 ? layout.limbs.indexOf(layout.limbs.find(([c, d]) => c === a && d === b)!) : i;
  });
}
