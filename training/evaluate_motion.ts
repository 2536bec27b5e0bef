// Evaluation of MotionBERT's pretraining task: the mean per-joint position error (MPJPE) of
// the 3D motion recovered from the clean 2D view, in crop units (the [-1, 1] crop of
// data/motion_pretrain.ts spans 2), over the present joints of every sample. (The training
// loss, like MotionBERT's, counts every joint: absent ones, rare in Kinect data, are asked
// to sit at the root.)
import { cast } from "../autograd/ops.ts";
import { noGrad } from "../autograd/tape.ts";
import { deviceBatch, type InputSpec, TEST_MODE } from "../data/batches.ts";
import { BatchLoader } from "../data/loader.ts";
import { present3 } from "../data/motion_pretrain.ts";
import type { SkeletonFile } from "../data/schema.ts";
import type { ActionModel } from "../models/presets.ts";
import type { Runtime } from "../runtime/runtime.ts";

export interface MotionResult {
  samples: number;
  /** Mean per-joint position error (crop units). */
  mpjpe: number;
}

export async function evaluateMotion(
  rt: Runtime,
  model: ActionModel,
  file: SkeletonFile,
  indices: number[],
  spec: InputSpec,
  rows: number,
): Promise<MotionResult> {
  const loader = new BatchLoader(file, indices, spec, TEST_MODE, {
    batchSize: rows,
    shuffle: false,
    seed: 0,
    window: 1,
    prefetch: 1,
    dropLast: false,
  });
  let sum = 0, joints = 0, samples = 0;
  model.train(false);
  try {
    for await (const hb of loader.epoch(0)) {
      const pred = rt.tidy(() =>
        noGrad(() => cast(model.forward(deviceBatch(rt, hb, file.meta, spec).input), "f32"))
      );
      const p = await rt.read(pred);
      rt.dispose(pred);
      const t = hb.target!;
      for (let i = 0; i < t.length; i += 3) {
        if (!present3(t, i)) continue; // absent (the root too: it is 0 by definition)
        sum += Math.hypot(p[i] - t[i], p[i + 1] - t[i + 1], p[i + 2] - t[i + 2]);
        joints++;
      }
      samples += hb.samples;
    }
  } finally {
    model.train(true);
  }
  return { samples, mpjpe: joints ? sum / joints : NaN };
}
