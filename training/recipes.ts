// Training recipes as values: partial experiments (training/experiment.ts) holding the
// optimiser, schedule, length, batch and head dropout of a reference, named. The test
// protocol and the flips belong to the input pipeline (training/resolve.ts's input layer:
// PoseConv3D's 10 clips + flip for heatmaps, MotionBERT's one unflipped view for keypoints).
// A preset names its recipe (models/presets.ts); `--recipe` picks another, and any flag or
// config file still overrides one leaf (training/resolve.ts).
import type { Experiment, Layer } from "./experiment.ts";

export interface Recipe {
  name: string;
  description: string;
  /** Where the values come from. */
  reference: string;
  layer: Layer;
}

/** The study's augmentation variant ("+ Aug" rows): rotation, Gaussian noise, temporal shift. */
export const STUDY_AUGMENTATION: Layer = { augment: { rotation: 10, noise: 0.01, shift: 4 } };

/** MotionBERT's action configs (from scratch and, with its head lr, fine-tuning). */
const MOTIONBERT: Layer = {
  optim: {
    optimizer: "adamw",
    lr: 1e-4,
    weightDecay: 0.01,
    labelSmoothing: 0,
    clipNorm: 0,
    batchSize: 32,
  },
  schedule: { kind: "exponential", gamma: 0.99, warmupEpochs: 0 },
  model: { headDropout: 0.5 },
  run: { epochs: 300 },
};

/** PoseConv3D's and scenic's optimiser: SGD, momentum 0.9 (not Nesterov), no smoothing. */
const SGD: Partial<Experiment["optim"]> = {
  optimizer: "sgd",
  momentum: 0.9,
  nesterov: false,
  labelSmoothing: 0,
  batchSize: 32,
};

export const RECIPES: Recipe[] = [
  {
    name: "cpu",
    description: "CPU-sized runs of the -tiny presets: the defaults (AdamW 1e-3, cosine, 8 epochs)",
    reference: "heatformer (chosen on the built-in dataset and Penn Action)",
    // the defaults are this recipe (training/experiment.ts DEFAULT_EXPERIMENT)
    layer: {},
  },
  {
    name: "motionbert",
    description: "MotionBERT action training: AdamW 1e-4, lr x0.99 per epoch, 300 epochs",
    reference: "Walter0807/MotionBERT configs/action/MB_train_NTU60_xsub.yaml",
    layer: MOTIONBERT,
  },
  {
    name: "motionbert-finetune",
    description: "MotionBERT fine-tuning from a pretrained encoder: its action recipe with the " +
      "head at 10x the backbone's lr (1e-3 / 1e-4)",
    reference: "Walter0807/MotionBERT configs/action/MB_ft_NTU60_xsub.yaml (lr_backbone, lr_head)",
    layer: { ...MOTIONBERT, optim: { ...MOTIONBERT.optim, headLrScale: 10 } },
  },
  {
    name: "motionbert-pretrain",
    description: "MotionBERT pretraining (heatformer pretrain): AdamW 5e-4 at batch 64, wd 0.01, " +
      "lr x0.99 per epoch, no dropout, H36M joints",
    reference: "Walter0807/MotionBERT configs/pretrain/MB_pretrain.yaml",
    layer: {
      data: { layout: "h36m17" },
      optim: {
        optimizer: "adamw",
        lr: 5e-4,
        lrBatch: 64,
        weightDecay: 0.01,
        labelSmoothing: 0,
        clipNorm: 0,
        batchSize: 32,
      },
      schedule: { kind: "exponential", gamma: 0.99, warmupEpochs: 0 },
      model: { dropout: 0, dropPath: 0, headDropout: 0 },
      eval: { checkpoint: "last" },
      run: { epochs: 90 },
    },
  },
  {
    name: "posec3d",
    description: "PoseConv3D: SGD 0.4 at batch 256, cosine per step, 240 epochs",
    reference: "kennymckormick/pyskl configs/posec3d/slowonly_r50_ntu60_xsub/joint.py",
    layer: {
      optim: { ...SGD, lr: 0.4, lrBatch: 256, weightDecay: 3e-4, clipNorm: 40 },
      schedule: { kind: "cosine", warmupEpochs: 0 },
      model: { headDropout: 0.5 },
      run: { epochs: 240 },
    },
  },
  {
    name: "vivit",
    description: "ViViT (scenic, Kinetics): SGD lr 0.1 at batch 64, momentum 0.9, warm-up + cosine",
    reference: "google-research/scenic projects/vivit/configs/kinetics400",
    layer: {
      optim: { ...SGD, lr: 0.1, lrBatch: 64, weightDecay: 0, clipNorm: 1 },
      schedule: { kind: "cosine", warmupEpochs: 2.5 },
      model: { headDropout: 0 },
      run: { epochs: 30 },
    },
  },
];

/** A recipe by name; "NAME+aug" adds the study's augmentations to NAME. */
export function recipeByName(name: string): Recipe {
  const [base, ...mods] = name.split("+");
  const r = RECIPES.find((x) => x.name === base);
  if (!r || mods.some((m) => m !== "aug")) {
    throw new Error(
      `unknown recipe "${name}" (recipes: ${RECIPES.map((x) => x.name).join(", ")}; ` +
        `NAME+aug adds the study's augmentations)`,
    );
  }
  if (mods.length === 0) return r;
  return {
    ...r,
    name,
    description: `${r.description}; + the study's augmentations (rotation, noise, shift)`,
    layer: { ...r.layer, ...STUDY_AUGMENTATION },
  };
}
