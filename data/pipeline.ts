// The PoseConv3D (pyskl) input pipeline on the host, per sample, and the keypoint inputs of
// the baselines (../shared/spec/method.md section 3), one module a step:
//   data/sampling.ts   which frames a clip takes (pyskl's uniform sampling, MotionBERT's resample)
//   data/clip.ts       the clip's 2D keypoints and their geometry: compact, resize, random
//                      resized or centre crop, resize, flip, the study's augmentations
//   data/rotation.ts   3D clips: the body's frame, random rotation, the 2D pseudo-image
//   data/keypoints.ts  keypoint inputs (kp2d, kp3d; bones, motion, mirror)
// The heatmaps themselves are rendered on the GPU (kernels/heatmap.ts);
// kernels/heatmap_reference.ts is the plain TypeScript version the tests compare against.
export { resampleClip, sampleClip, sampleFrames, type Sampling } from "./sampling.ts";
export {
  type Augment,
  augmentClip,
  centreCrop,
  type Clip2D,
  flipClip,
  gatherClip2D,
  NO_AUGMENT,
  poseCompact,
  randomResizedCrop,
  resizeShort,
  resizeTo,
  transformClip,
} from "./clip.ts";
export { alignedClip2D, bodyFrame, clipRotation } from "./rotation.ts";
export {
  boneInput,
  cropScale,
  drawMove,
  keypointInput,
  type KeypointOptions,
  motionInput,
  type Move,
  randomMove,
} from "./keypoints.ts";
export { heatmapChannels, type HeatmapSpec } from "../kernels/heatmap.ts";
export { heatmapReference } from "../kernels/heatmap_reference.ts";
