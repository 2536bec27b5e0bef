// The train flags, generated from the experiment's schema: each leaf has one flag, its
// key in kebab case (`optim.weightDecay` = `--weight-decay`) unless named below, so that a
// new leaf cannot lack its flag; `--set PATH=VALUE` reaches any leaf by its path.
import type { Command } from "commander";
import {
  ConfigError,
  type Layer,
  type Leaf,
  leafByPath,
  LEAVES,
  setLeaf,
} from "../training/experiment.ts";

/** Leaves whose flag is not their key in kebab case (the names flags had before paths). */
const FLAG_NAMES: Record<string, string> = {
  "model.preset": "model",
  "input.kind": "input",
  "data.path": "data",
  "schedule.kind": "schedule",
  "eval.clips": "test-clips",
  "eval.flip": "flip-test",
  "eval.checkpoint": "final-checkpoint",
  "eval.every": "eval-every",
};

const kebab = (s: string) => s.replace(/[A-Z]/g, (m) => "-" + m.toLowerCase());

/** A leaf's flag, without dashes. */
export function flagName(leaf: Leaf): string {
  return FLAG_NAMES[leaf.path] ?? kebab(leaf.key);
}

/** The key commander stores a flag's value under (--clip-len -> clipLen). */
function optionKey(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
}

function placeholder(l: Leaf): string {
  if (l.kind === "numbers") return "<list>";
  if (l.kind === "number") return "<x>";
  return l.kind === "enum" ? "<kind>" : "<value>";
}

/** The leaf's flag help: its schema text and, for enumerations, its values. */
function helpOf(l: Leaf): string {
  const where = ` [${l.path}]`;
  return `${l.help}${l.nullable ? " (none: unset)" : ""}${where}`;
}

/** Adds one option per leaf, and --set, --config, --print-config. */
export function addExperimentOptions(cmd: Command): Command {
  for (const l of LEAVES) {
    const f = flagName(l);
    if (l.kind === "boolean") {
      cmd.option(`--${f}`, helpOf(l)).option(`--no-${f}`, `${l.path}: false`);
    } else cmd.option(`--${f} ${placeholder(l)}`, helpOf(l));
  }
  return cmd
    .option(
      "--set <path=value>",
      "set any leaf by its path, e.g. --set optim.lr=3e-4 (repeatable; after the flags)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      "--config <file>",
      "an experiment file (JSON with comments); repeat to layer several in order",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option("--print-config", "print the resolved experiment with each leaf's origin, and exit");
}

/** A flag's text as the leaf's value; `name` is how the user wrote it (for the error). */
export function parseLeafValue(l: Leaf, text: string, name: string): unknown {
  if (l.nullable && (text === "none" || text === "null")) return null;
  const num = (t: string) => {
    const n = Number(t.trim());
    if (t.trim() === "" || !Number.isFinite(n)) {
      throw new ConfigError(`${name}: "${t}" is not a number`);
    }
    return n;
  };
  switch (l.kind) {
    case "number":
      return num(text);
    case "numbers":
      return text.split(",").map(num);
    case "boolean":
      if (text === "true" || text === "false") return text === "true";
      throw new ConfigError(`${name}: "${text}" is neither true nor false`);
    case "enum":
      if (!l.options!.includes(text)) {
        throw new ConfigError(`${name}: "${text}" is not one of ${l.options!.join(", ")}`);
      }
      return text;
    default:
      return text;
  }
}

/** `--set PATH=VALUE` as [leaf, value]. */
function parseSet(spec: string): [Leaf, unknown] {
  const eq = spec.indexOf("=");
  const path = eq > 0 ? spec.slice(0, eq) : "";
  const leaf = leafByPath(path);
  if (!leaf) {
    const near = LEAVES.filter((l) => l.key.toLowerCase() === path.split(".").pop()?.toLowerCase());
    throw new ConfigError(
      `--set ${spec}: ${eq > 0 ? `unknown path "${path}"` : "expected PATH=VALUE"}` +
        (near.length ? ` (did you mean ${near.map((l) => l.path).join(", ")}?)` : "") +
        " (paths: heatformer train --print-config)",
    );
  }
  return [leaf, parseLeafValue(leaf, spec.slice(eq + 1), `--set ${path}`)];
}

export type Flags = Record<string, string | string[] | boolean | undefined>;

/** The flags' layer: each given flag's leaf, then --set (later wins). */
export function flagsLayer(o: Flags): Layer {
  const layer: Layer = {};
  for (const l of LEAVES) {
    const f = flagName(l), v = o[optionKey(f)];
    if (v === undefined || Array.isArray(v)) continue;
    setLeaf(layer, l.path, typeof v === "boolean" ? v : parseLeafValue(l, v, `--${f}`));
  }
  for (const spec of (o.set as string[] | undefined) ?? []) {
    const [leaf, value] = parseSet(spec);
    setLeaf(layer, leaf.path, value);
  }
  return layer;
}

/** The flag a path is set by, for messages ("optim.lr" -> "--lr"). */
export function flagOf(path: string): string {
  const l = leafByPath(path);
  return l ? `--${flagName(l)}` : path;
}

/** A configuration error with the flag beside the path it names ("optim.lr (--lr): ..."). */
export function withFlags(e: unknown): unknown {
  if (!(e instanceof ConfigError)) return e;
  const message = e.message.replace(
    /(^|: )([a-z]+\.[A-Za-z]+)(:| )/,
    (all, pre: string, path: string, post: string) =>
      leafByPath(path) ? `${pre}${path} (${flagOf(path)})${post}` : all,
  );
  return new ConfigError(message);
}
