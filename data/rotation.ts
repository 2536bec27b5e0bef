// 3D rotations of a clip: into the body's own frame (view alignment), CTR-GCN's random
// rotation augmentation, and the projection of a rotated 3D clip to a 2D pseudo-image.
import type { Rng } from "../layers/init.ts";
import type { Augment, Clip2D } from "./clip.ts";
import { bodyFrameJoints, type JointLayout } from "./layouts.ts";
import type { SkeletonRecord } from "./schema.ts";

/**
 * The rotation a 3D clip goes through: into the body's own frame (viewAlign: the camera's
 * viewpoint no longer shows), then CTR-GCN's training augmentation for NW-UCLA, one rotation
 * per clip about the three axes, each angle uniform in +-rotation.
 */
export function clipRotation(
  r: SkeletonRecord,
  frames: number[],
  v: number,
  layout: JointLayout,
  viewAlign: boolean | undefined,
  augment: { a: Augment; rng: Rng } | undefined,
): readonly number[] {
  const R = viewAlign ? bodyFrame(r, frames, v, layout) : IDENTITY3;
  if (!augment || augment.a.rotation <= 0) return R;
  const { a, rng } = augment;
  const ang = () => (rng.uniform() * 2 - 1) * a.rotation * Math.PI / 180;
  const [x, y, z] = [ang(), ang(), ang()];
  const [cx, sx, cy, sy, cz, sz] = [
    Math.cos(x),
    Math.sin(x),
    Math.cos(y),
    Math.sin(y),
    Math.cos(z),
    Math.sin(z),
  ];
  // Rz Ry Rx, after the body frame
  return mul3([
    cz * cy,
    cz * sy * sx - sz * cx,
    cz * sy * cx + sz * sx,
    sz * cy,
    sz * sy * sx + cz * cx,
    sz * sy * cx - cz * sx,
    -sy,
    cy * sx,
    cy * cx,
  ], R);
}

/**
 * A 3D clip as a 2D pseudo-image for heatmaps, seen along the body's own depth axis: each
 * joint turned by `R` (clipRotation) and projected orthographically (x right, y down, 1 px per
 * millimetre). PoseCompact then frames it as it frames image coordinates.
 */
export function alignedClip2D(
  r: SkeletonRecord,
  v: number,
  frames: number[],
  R: readonly number[],
): Clip2D {
  const M = r.persons, T = frames.length;
  const xy = new Float32Array(M * T * v * 2), score = new Float32Array(M * T * v);
  const k = (m: number, f: number, j: number) => ((m * r.frames + f) * v + j) * 3;
  const o = k(0, frames[0], 0);
  const [ox, oy, oz] = [r.keypoint[o], r.keypoint[o + 1], r.keypoint[o + 2]];
  const CANVAS = 4000; // px: keeps every body of a few metres at positive coordinates
  for (let m = 0; m < M; m++) {
    frames.forEach((f, t) => {
      for (let j = 0; j < v; j++) {
        const s = k(m, f, j), X = r.keypoint[s], Y = r.keypoint[s + 1], Z = r.keypoint[s + 2];
        if (X === 0 && Y === 0 && Z === 0) continue; // absent: stays 0 with score 0
        const [px, py, pz] = [X - ox, Y - oy, Z - oz];
        const dst = (m * T + t) * v + j;
        xy[dst * 2] = CANVAS / 2 + 1000 * (R[0] * px + R[1] * py + R[2] * pz);
        xy[dst * 2 + 1] = CANVAS / 2 - 1000 * (R[3] * px + R[4] * py + R[5] * pz);
        score[dst] = r.score ? r.score[(m * r.frames + f) * v + j] : 1;
      }
    });
  }
  return { persons: M, frames: T, joints: v, xy, score, width: CANVAS, height: CANVAS };
}

/** Row-major 3 x 3 identity (never mutated: rotations are built as new arrays). */
const IDENTITY3: readonly number[] = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** Row-major 3 x 3 product a b. */
function mul3(a: readonly number[], b: readonly number[]): number[] {
  return Array.from({ length: 9 }, (_, k) => {
    const i = Math.floor(k / 3), j = k % 3;
    return a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
  });
}

/**
 * The rotation into the first person's body frame over the clip (the view-invariant
 * transform of VA-LSTM / SGN): y along the spine (mean of shoulders minus mean of hips), x
 * along the body's left-to-right axis made orthogonal to it (right minus left shoulders and
 * hips), z = x cross y. Rows are the new axes, so R p gives p's body-frame coordinates.
 * The identity when the layout lacks those joints or the clip never shows them.
 */
export function bodyFrame(
  r: SkeletonRecord,
  frames: number[],
  v: number,
  layout: JointLayout,
): readonly number[] {
  const frame = bodyFrameJoints(layout);
  if (!frame) return IDENTITY3; // preflight refuses --view-align for such layouts
  const [ls, rs, lh, rh] = frame;
  const up = [0, 0, 0], side = [0, 0, 0];
  for (const f of frames) {
    const p = (i: number) => [0, 1, 2].map((c) => r.keypoint[(f * v + i) * 3 + c]);
    const pts = [ls, rs, lh, rh].map(p);
    if (pts.some((q) => q[0] === 0 && q[1] === 0 && q[2] === 0)) continue;
    for (let c = 0; c < 3; c++) {
      up[c] += pts[0][c] + pts[1][c] - pts[2][c] - pts[3][c];
      side[c] += pts[1][c] + pts[3][c] - pts[0][c] - pts[2][c];
    }
  }
  const norm = (q: number[]) => Math.hypot(q[0], q[1], q[2]);
  const ny = norm(up);
  if (ny < 1e-9) return IDENTITY3;
  const y = up.map((c) => c / ny);
  const d = side[0] * y[0] + side[1] * y[1] + side[2] * y[2];
  const xr = side.map((c, k) => c - d * y[k]);
  const nx = norm(xr);
  if (nx < 1e-9) return IDENTITY3;
  const x = xr.map((c) => c / nx);
  const z = [x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]];
  return [...x, ...y, ...z];
}
