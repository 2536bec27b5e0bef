// Experiments in files: a config file (JSON, comments and trailing commas allowed) is a
// partial experiment; a run folder's config.json is the resolved experiment, its origins and
// the run's record, and is itself a valid config file. Run folders written before the nested
// experiment (flat config.json, format 1) are migrated on read (training/migrate.ts).
import { join } from "node:path";
import { parse as parseJsonc, type ParseError, printParseErrorCode } from "jsonc-parser";
import {
  ConfigError,
  DEFAULT_EXPERIMENT,
  type Experiment,
  type Layer,
  validateExperiment,
  validateLayer,
} from "./experiment.ts";
import { isFlatConfig, migrateFlat } from "./migrate.ts";
import { type Origins, resolveExperiment } from "./resolve.ts";

/** The format a run's config.json is written in. */
export const RUN_FORMAT = "heatformer-experiment/2";

/** What a run folder records beside its experiment (not configuration). */
export interface RunRecordFields {
  /** The data file read (absolute; the built-in dataset's cache for the built-in one). */
  dataFile?: string;
  /** The model as built (the experiment's model section, the input and the classes). */
  modelConfig?: unknown;
  /** Each extension of the run by `--resume --epochs N`. */
  extended?: { from: number; to: number; at: number }[];
  [key: string]: unknown;
}

/** A run folder's config.json, read. */
export interface RunConfigFile {
  experiment: Experiment;
  origins: Origins;
  record: RunRecordFields;
  /** 1: a flat config.json migrated on read; 2: the nested experiment. */
  format: 1 | 2;
}

/** Keys of a config.json that are not part of the experiment. */
const RECORD_KEYS = ["format", "origins", "record"];

/** Parses JSON with comments; errors name the file, line and column. */
export function parseConfigText(text: string, file: string): unknown {
  const errors: ParseError[] = [];
  const value = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length) {
    const e = errors[0];
    const before = text.slice(0, e.offset).split("\n");
    throw new ConfigError(
      `${file}:${before.length}:${before.at(-1)!.length + 1}: ${printParseErrorCode(e.error)}`,
    );
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`${file}: not an experiment (a JSON object of sections)`);
  }
  return value;
}

async function readText(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(`${file}: not readable (${(e as Error).message})`);
  }
}

/**
 * A config file as a layer. A run's config.json is accepted (its record is not configuration
 * and its folder is its own: the new run goes to --out or a new folder).
 */
export async function readConfigLayer(file: string): Promise<Layer> {
  const raw = parseConfigText(await readText(file), file) as Record<string, unknown>;
  if (isFlatConfig(raw)) {
    const { layer } = migrateFlat(raw, `${file}: `);
    delete layer.run?.out;
    return validateLayer(layer, `${file}: `);
  }
  const fromRun = "record" in raw || "format" in raw;
  const body = Object.fromEntries(Object.entries(raw).filter(([k]) => !RECORD_KEYS.includes(k)));
  const layer = validateLayer(body, `${file}: `);
  if (fromRun) delete layer.run?.out;
  return layer;
}

/** A run folder's configuration, migrated when it is from before the nested experiment. */
export async function readRunConfig(dir: string): Promise<RunConfigFile> {
  const file = join(dir, "config.json");
  const raw = parseConfigText(await readText(file), file) as Record<string, unknown>;
  if (isFlatConfig(raw)) {
    const { layer, origins, record } = migrateFlat(raw, `${file}: `);
    // the layers a flat run resolved from: whatever it did not record had its default then
    const { experiment } = resolveExperiment([{ origin: "config", layer }]);
    return { experiment, origins, record, format: 1 };
  }
  const body = Object.fromEntries(Object.entries(raw).filter(([k]) => !RECORD_KEYS.includes(k)));
  const experiment = validateExperiment(withNewLeaves(body), `${file}: `);
  const origins = (raw.origins ?? {}) as Origins;
  return { experiment, origins, record: (raw.record ?? {}) as RunRecordFields, format: 2 };
}

/**
 * A recorded experiment with the leaves added since it was written at their defaults (each
 * new leaf's default is the behaviour from before it existed).
 */
function withNewLeaves(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...body };
  for (const [group, defaults] of Object.entries(DEFAULT_EXPERIMENT)) {
    const own = body[group];
    if (own && typeof own === "object") out[group] = { ...defaults, ...own };
  }
  return out;
}

/** The text of a run's config.json. */
export function runConfigText(
  experiment: Experiment,
  origins: Origins,
  record: RunRecordFields,
): string {
  return JSON.stringify({ format: RUN_FORMAT, ...experiment, origins, record }, null, 2) + "\n";
}

/** Merges config files in order over the fixed layers (for tests and tools). */
export async function experimentOfFiles(files: string[]): Promise<Experiment> {
  const layers = [];
  for (const f of files) layers.push({ origin: `config ${f}`, layer: await readConfigLayer(f) });
  return resolveExperiment(layers).experiment;
}
