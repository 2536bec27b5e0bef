// A joint layout from a JSON file (`--layout FILE.json`), validated with zod: every index in
// range, left/right pairs symmetric, the skeleton connected: `parents` a tree (the root its own
// parent), or `limbs` reaching every joint from the root (limbs may close a loop, as COCO's
// hip-to-hip limb does).
//   { "name": "my5", "joints": ["head", "left_hand", "right_hand", "left_foot", "right_foot"],
//     "parents": [0, 0, 0, 0, 0]            // or "limbs": [[0, 1], [0, 2], ...]
//     "root": 0,                             // default: the joint that is its own parent, else 0
//     "flipPairs": [[1, 2], [3, 4]],         // default: left_X with right_X by name
//     "bodyFrame": [1, 2, 3, 4] }            // optional: l/r shoulder, l/r hip for --view-align
import { z } from "zod";
import { boneParents, type JointLayout, namedFlipPairs, registerLayout } from "./layouts.ts";
import { DataError } from "./schema.ts";

/** The most joints a layout may have: real skeletons have tens (whole-body ones 133), and a
 * heatmap volume holds a channel per joint. Beyond it a file is refused before any checking. */
export const MAX_JOINTS = 10_000;

/** Each list's most entries; limbs may close loops, so a few per joint. */
const MAX_ENTRIES: Record<string, number> = {
  joints: MAX_JOINTS,
  parents: MAX_JOINTS,
  flipPairs: MAX_JOINTS,
  limbs: 4 * MAX_JOINTS,
};

/** A list too long to be a skeleton, found before zod walks it. */
function tooLong(json: unknown): string | null {
  if (!json || typeof json !== "object") return null;
  for (const [field, max] of Object.entries(MAX_ENTRIES)) {
    const v = (json as Record<string, unknown>)[field];
    if (Array.isArray(v) && v.length > max) {
      return `layout ${field}: ${v.length} entries, at most ${max} (MAX_JOINTS ${MAX_JOINTS})`;
    }
  }
  return null;
}

const Pair = z.tuple([z.number().int().min(0), z.number().int().min(0)]);

const LayoutJson = z.object({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-'"),
  joints: z.array(z.string().min(1)).min(1),
  parents: z.array(z.number().int().min(0)).optional(),
  limbs: z.array(Pair).optional(),
  root: z.number().int().min(0).optional(),
  flipPairs: z.array(Pair).optional(),
  bodyFrame: z.tuple([
    z.number().int().min(0),
    z.number().int().min(0),
    z.number().int().min(0),
    z.number().int().min(0),
  ]).optional(),
}).strict();

/** The layout's checks; the message names the field. */
function check(l: JointLayout, hasParents: boolean): string | null {
  const V = l.joints.length;
  const inRange = (i: number) => i < V;
  const names = new Set<string>();
  const dup = l.joints.find((n) => names.size === names.add(n).size);
  if (dup !== undefined) return `joints: "${dup}" is listed twice`;
  if (!inRange(l.root)) return `root: ${l.root} is not a joint (there are ${V})`;
  for (const [k, [a, b]] of l.limbs.entries()) {
    const where = hasParents ? `parents[${b}]: ${a}` : `limbs[${k}]: [${a}, ${b}]`;
    if (!inRange(a) || !inRange(b)) return `${where} names a joint past ${V - 1}`;
    if (a === b) return `${where} joins a joint to itself`;
  }
  const seen = new Set<number>();
  for (const [k, [a, b]] of l.flipPairs.entries()) {
    if (!inRange(a) || !inRange(b)) {
      return `flipPairs[${k}]: [${a}, ${b}] names a joint past ${V - 1}`;
    }
    if (a === b || seen.has(a) || seen.has(b)) {
      return `flipPairs[${k}]: [${a}, ${b}] is not a left/right pair of two joints each in one pair`;
    }
    seen.add(a).add(b);
  }
  if (l.bodyFrame?.some((i) => !inRange(i))) return `bodyFrame: a joint past ${V - 1}`;
  try {
    boneParents(l);
  } catch (e) {
    return `${hasParents ? "parents" : "limbs"}: ${(e as Error).message}`;
  }
  return null;
}

/** Parses and validates a layout definition (from a file or an Arrow file's metadata). */
export function parseLayout(json: unknown, source: string): JointLayout {
  const huge = tooLong(json);
  if (huge) throw new DataError(source, null, huge);
  const r = LayoutJson.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new DataError(source, null, `layout ${issue.path.join(".") || "file"}: ${issue.message}`);
  }
  const d = r.data;
  if (!d.parents && !d.limbs) {
    throw new DataError(source, null, "layout: give the skeleton as parents or as limbs");
  }
  if (d.parents && d.parents.length !== d.joints.length) {
    throw new DataError(
      source,
      null,
      `layout parents: ${d.parents.length} entries for ${d.joints.length} joints`,
    );
  }
  const root = d.root ?? Math.max(0, d.parents?.findIndex((p, i) => p === i) ?? 0);
  if (root >= d.joints.length) {
    throw new DataError(
      source,
      null,
      `layout root: ${root} is not a joint (there are ${d.joints.length})`,
    );
  }
  if (d.parents && d.parents[root] !== root) {
    throw new DataError(
      source,
      null,
      `layout parents[${root}]: the root's parent must be itself (${d.parents[root]})`,
    );
  }
  const limbs = d.limbs ??
    d.parents!.flatMap((p, i) => (i === root ? [] : [[p, i] as [number, number]]));
  const layout: JointLayout = {
    name: d.name,
    joints: d.joints,
    flipPairs: d.flipPairs ?? namedFlipPairs(d.joints),
    limbs,
    root,
    ...(d.bodyFrame ? { bodyFrame: d.bodyFrame } : {}),
  };
  const problem = check(layout, !!d.parents);
  if (problem) throw new DataError(source, null, `layout ${problem}`);
  return layout;
}

/** The JSON a layout is stored as (in Arrow metadata); parseLayout reads it back. */
export function layoutJson(l: JointLayout): Record<string, unknown> {
  return {
    name: l.name,
    joints: l.joints,
    limbs: l.limbs,
    root: l.root,
    flipPairs: l.flipPairs,
    ...(l.bodyFrame ? { bodyFrame: l.bodyFrame } : {}),
  };
}

/** `--layout NAME|FILE.json`: a built-in or registered layout, or one read from a file. */
export async function resolveLayoutArg(arg: string): Promise<JointLayout> {
  if (!arg.endsWith(".json")) {
    const { layoutByName } = await import("./layouts.ts");
    return layoutByName(arg);
  }
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(arg));
  } catch (e) {
    throw new DataError(arg, null, `not a readable JSON layout (${(e as Error).message})`);
  }
  const l = parseLayout(json, arg);
  try {
    return registerLayout(l, arg);
  } catch (e) {
    throw new DataError(arg, null, (e as Error).message.slice(arg.length + 2));
  }
}
