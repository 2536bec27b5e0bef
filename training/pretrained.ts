// The pretrained starts that `--init pretrained` names: per preset, an encoder that
// `heatformer pretrain` made (MotionBERT's task on 3D skeletons), kept beside the sources with
// the run configuration that made it. The choice of data, objective and length is measured in
// docs/pretraining.md.
import { ConfigError } from "./experiment.ts";

/** The name `run.init` takes for a preset's pretrained encoder. */
export const PRETRAINED = "pretrained";

/** Presets with a pretrained encoder: the weights file beside the sources. */
const ENCODERS: Record<string, string> = {
  "motionbert-tiny": "motionbert-tiny-nwucla-h36m17.safetensors",
};

/** The file of a preset's pretrained encoder (an error naming those that have one). */
export async function pretrainedEncoder(preset: string): Promise<string> {
  const name = ENCODERS[preset];
  if (!name) {
    throw new ConfigError(
      `run.init pretrained: no pretrained encoder for ${preset} (there is one for: ${
        Object.keys(ENCODERS).join(", ")
      }); make one with heatformer pretrain and give its run folder to --init`,
    );
  }
  const url = new URL(`../assets/pretrained/${name}`, import.meta.url);
  if (url.protocol !== "file:" || !(await Deno.stat(url).catch(() => null))) {
    throw new ConfigError(
      `run.init pretrained: ${url.href} is missing (a bundle or binary carries no assets); ` +
        "give --init the file from heatformer's source tree, or a heatformer pretrain run",
    );
  }
  return url.pathname;
}
