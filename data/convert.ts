// `heatformer convert FORMAT INPUT -o OUT.arrow`: importers streamed into the Arrow writer.
import { join } from "node:path";
import { ntuClasses, ntuRecord, parseNtuName } from "./importers/ntu.ts";
import { NWUCLA_CLASSES, nwuclaRecord } from "./importers/nwucla.ts";
import {
  DataError,
  type DatasetMeta,
  type SkeletonRecord,
  type WriteOptions,
  type WriteReport,
  writeSkeletonArrow,
} from "./schema.ts";

type Item = SkeletonRecord | { skip: string; reason: string };

async function listFiles(dir: string, ext: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(ext)) out.push(e.name);
  } catch (e) {
    throw new DataError(dir, null, `cannot read the folder (${(e as Error).message})`);
  }
  if (!out.length) throw new DataError(dir, null, `no *${ext} files in the folder`);
  return out.sort();
}

export interface NtuOptions {
  classes: 60 | 120;
  /** A list of sample names to skip unread (the dataset's samples_with_missing_skeletons.txt). */
  missing?: Set<string>;
  /** Stops the write cleanly (nothing left behind). */
  signal?: AbortSignal;
}

export async function* ntuItems(dir: string, o: NtuOptions): AsyncGenerator<Item> {
  for (const f of await listFiles(dir, ".skeleton")) {
    const name = f.replace(/\.skeleton$/, "");
    const meta = parseNtuName(name);
    if (meta && meta.action > o.classes) {
      // NTU120 files in an NTU60 conversion: dropped, and counted as dropped
      yield { skip: name, reason: `action A${meta.action} is not one of the ${o.classes} classes` };
      continue;
    }
    if (o.missing?.has(name)) {
      yield { skip: name, reason: "listed as missing skeleton" };
      continue;
    }
    const path = join(dir, f);
    const rec = ntuRecord(await Deno.readTextFile(path), path, name, o.classes);
    yield rec ?? { skip: name, reason: "no skeleton in any frame" };
  }
}

/** The dataset's root holds its JSON files in `all_sqe/`; accept the root or that folder. */
async function nwuclaFolder(dir: string): Promise<string> {
  try {
    if ((await Deno.stat(join(dir, "all_sqe"))).isDirectory) return join(dir, "all_sqe");
  } catch { /* not the root: the folder itself */ }
  return dir;
}

export async function* nwuclaItems(root: string): AsyncGenerator<Item> {
  const dir = await nwuclaFolder(root);
  for (const f of await listFiles(dir, ".json")) {
    const path = join(dir, f);
    let json: unknown;
    try {
      json = JSON.parse(await Deno.readTextFile(path));
    } catch (e) {
      throw new DataError(path, null, `not valid JSON (${(e as Error).message})`);
    }
    yield nwuclaRecord(json, path);
  }
}

export async function convertNtu(dir: string, out: string, o: NtuOptions): Promise<WriteReport> {
  const meta: DatasetMeta = {
    dataset: `ntu${o.classes}`,
    layout: "ntu25",
    channels: 3,
    classes: ntuClasses(o.classes),
    keypointDtype: "f32",
    batchSize: 64,
  };
  return await writeSkeletonArrow(out, meta, ntuItems(dir, o), dir, o);
}

export async function convertNwucla(
  dir: string,
  out: string,
  o: WriteOptions = {},
): Promise<WriteReport> {
  const meta: DatasetMeta = {
    dataset: "nw-ucla",
    layout: "kinect20",
    channels: 3,
    classes: NWUCLA_CLASSES,
    keypointDtype: "f32",
    batchSize: 128,
  };
  return await writeSkeletonArrow(out, meta, nwuclaItems(dir), dir, o);
}

/** Reads a names list (one per line), e.g. samples_with_missing_skeletons.txt. */
export async function readNameList(path: string): Promise<Set<string>> {
  try {
    return new Set(
      (await Deno.readTextFile(path)).split(/\r?\n/).map((l) => l.trim()).filter(Boolean),
    );
  } catch (e) {
    throw new DataError(path, null, `cannot read the name list (${(e as Error).message})`);
  }
}
