/**
 * heatformer as a library: the runtime (device, tensors, autograd), the differentiable
 * ops, layers, the study's models, the data side (Arrow skeleton files, importers, the
 * PoseConv3D pipeline, GPU heatmaps) and training.
 *
 * ```ts
 * import { Runtime, ops, buildModel, presetByName } from "./mod.ts";
 * const rt = await Runtime.create();
 * const model = buildModel(rt, presetByName("vanilla-tiny").config);
 * ```
 * @module
 */

// runtime
export { KernelError, Runtime } from "./runtime/runtime.ts";
export type { HostArray, RuntimeStats } from "./runtime/runtime.ts";
export { acquireGpu, NoAdapterError } from "./runtime/device.ts";
export type { AdapterDescription, Gpu, GpuOptions } from "./runtime/device.ts";
export { Tensor } from "./runtime/tensor.ts";
export type { Shape } from "./runtime/tensor.ts";
export type { DType } from "./runtime/dtype.ts";
export type { KernelSpec } from "./runtime/kernel.ts";
export { Graph, StepGraphs } from "./runtime/graph.ts";
export type { GraphCommand } from "./runtime/graph.ts";

// autograd and ops
export * as ops from "./autograd/ops.ts";
export type { AttentionImpl, AttentionOptions } from "./autograd/ops.ts";
export { backward, noGrad } from "./autograd/tape.ts";

// layers and models
export { Block, Dropout, LayerNorm, Linear, Mlp, MultiHeadSelfAttention } from "./layers/basic.ts";
export { BatchNorm1d, DropPath, Embedding } from "./layers/extra.ts";
export { Module } from "./layers/module.ts";
export { Rng } from "./layers/init.ts";
export type { ModelConfig, ModelInput } from "./models/config.ts";
export {
  buildModel,
  flopsPerSample,
  parameterCount,
  presetByName,
  PRESETS,
} from "./models/presets.ts";
export type { ActionModel, Preset } from "./models/presets.ts";

// data
export { DataError, SkeletonFile, writeSkeletonArrow } from "./data/schema.ts";
export type { DatasetMeta, SkeletonRecord } from "./data/schema.ts";
export { COCO17, KINECT20, LAYOUTS, NTU25 } from "./data/layouts.ts";
export type { JointLayout } from "./data/layouts.ts";
export { convertNtu, convertNwucla } from "./data/convert.ts";
export { convertPyskl } from "./data/convert_pyskl.ts";
export { synthMeta, synthRecords } from "./data/importers/synth.ts";
export { BatchLoader } from "./data/loader.ts";
export { deviceBatch, hostBatch } from "./data/batches.ts";
export type { InputSpec } from "./data/batches.ts";
export { HeatmapRenderer, renderHeatmaps } from "./kernels/heatmap.ts";

// training and files
export { train } from "./training/trainer.ts";
export type { TrainSummary } from "./training/trainer.ts";
export {
  DEFAULT_EXPERIMENT,
  effectiveLr,
  LEAVES,
  validateExperiment,
  validateLayer,
  withRunFolder,
} from "./training/experiment.ts";
export type { Experiment, Layer, Leaf, RunExperiment } from "./training/experiment.ts";
export { resolveExperiment } from "./training/resolve.ts";
export type { NamedLayer, Origins, Resolved } from "./training/resolve.ts";
export { readConfigLayer, readRunConfig, runConfigText } from "./training/experiment_file.ts";
export { evaluate } from "./training/evaluate.ts";
export { Optimizer } from "./training/optimizer.ts";
export { loadCheckpoint, saveCheckpoint } from "./io/checkpoint.ts";
export { parseSafetensors, readSafetensors, serializeSafetensors } from "./io/safetensors.ts";
export { parsePickle, readPickle } from "./io/pickle.ts";
export {
  readTorchCheckpoint,
  serializeTorchStateDict,
  TorchCheckpointError,
  writeTorchStateDict,
} from "./io/torch_checkpoint.ts";
export type {
  ReadOptions as TorchReadOptions,
  TensorToWrite,
  TorchCheckpoint,
  TorchDtype,
  TorchExtra,
  TorchTensor,
} from "./io/torch_checkpoint.ts";
