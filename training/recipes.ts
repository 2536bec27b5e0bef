// Training recipes as values: the optimiser, schedule, length, batch, augmentations (and, for
// PoseConv3D, its test protocol) of a reference, named. The test protocol otherwise follows the
// input (training/resolve.ts): 10 clips + flip for heatmaps, one view for keypoints. A preset names its recipe (models/presets.ts); `--recipe`
// picks another, and any flag still overrides one field (training/resolve.ts).
import type { RunConfig } from "./config.ts";

/** The run fields a recipe may set. */
export type RecipeFields = Partial<
  Pick<
    RunConfig,
    | "optimizer"
    | "lr"
    | "weightDecay"
    | "momentum"
    | "nesterov"
    | "schedule"
    | "warmupEpochs"
    | "milestones"
    | "gamma"
    | "labelSmoothing"
    | "clipNorm"
    | "batchSize"
    | "epochs"
    | "headDropout"
    | "rotation"
    | "noise"
    | "shift"
    | "flip"
    | "testClips"
    | "flipTest"
  >
>;

export interface Recipe {
  name: string;
  description: string;
  /** Where the values come from. */
  reference: string;
  fields: RecipeFields;
  /** The batch the recipe's lr belongs to: lr scales linearly with the run's batch. */
  lrBatch?: number;
}

/** The study's augmentation variant ("+ Aug" rows): rotation, Gaussian noise, temporal shift. */
export const STUDY_AUGMENTATION: RecipeFields = { rotation: 10, noise: 0.01, shift: 4 };

export const RECIPES: Recipe[] = [
  {
    name: "cpu",
    description: "CPU-sized runs of the -tiny presets (AdamW, cosine, short)",
    reference: "heatformer (chosen on the built-in dataset and Penn Action)",
    fields: {
      optimizer: "adamw",
      lr: 1e-3,
      weightDecay: 0.05,
      schedule: "cosine",
      warmupEpochs: 1,
      labelSmoothing: 0.1,
      clipNorm: 1,
      batchSize: 16,
      epochs: 8,
    },
  },
  {
    name: "motionbert",
    description: "MotionBERT action fine-tuning: AdamW 1e-4, lr x0.99 per epoch, 300 epochs",
    reference: "Walter0807/MotionBERT configs/action/MB_train_NTU60_xsub.yaml",
    fields: {
      optimizer: "adamw",
      lr: 1e-4,
      weightDecay: 0.01,
      schedule: "exponential",
      gamma: 0.99,
      warmupEpochs: 0,
      labelSmoothing: 0,
      clipNorm: 0,
      batchSize: 32,
      epochs: 300,
      headDropout: 0.5,
    },
  },
  {
    name: "posec3d",
    description: "PoseConv3D: SGD 0.4 at batch 256, cosine per step, 240 epochs, 10 clips + flip",
    reference: "kennymckormick/pyskl configs/posec3d/slowonly_r50_ntu60_xsub/joint.py",
    lrBatch: 256,
    fields: {
      optimizer: "sgd",
      lr: 0.4,
      momentum: 0.9,
      nesterov: false,
      weightDecay: 3e-4,
      schedule: "cosine",
      warmupEpochs: 0,
      labelSmoothing: 0,
      clipNorm: 40,
      batchSize: 32,
      epochs: 240,
      headDropout: 0.5,
      flip: 0.5,
      testClips: 10,
      flipTest: true,
    },
  },
  {
    name: "vivit",
    description: "ViViT (scenic, Kinetics): SGD momentum 0.1 at batch 64, warm-up + cosine",
    reference: "google-research/scenic projects/vivit/configs/kinetics400",
    lrBatch: 64,
    fields: {
      optimizer: "sgd",
      lr: 0.1,
      momentum: 0.9,
      nesterov: false,
      weightDecay: 0,
      schedule: "cosine",
      warmupEpochs: 2.5,
      labelSmoothing: 0,
      clipNorm: 1,
      batchSize: 32,
      epochs: 30,
      headDropout: 0,
      flip: 0.5,
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
    fields: { ...r.fields, ...STUDY_AUGMENTATION },
  };
}
