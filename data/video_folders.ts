// Which videos a `poses` run reads, and their labels: files given one by one (unlabelled), or
// folders laid out as UCF101 is, FOLDER/CLASS/clip.avi (the class folder's name is the label),
// optionally under split folders, FOLDER/train|val|test/CLASS/clip.avi (the split's name).
import { basename, join, relative } from "node:path";
import { DataError } from "./schema.ts";

/** Extensions taken from folders (a file named on the command line is read whatever its name). */
const VIDEO_EXT = /\.(mp4|m4v|avi|mov|mkv|webm|mpe?g|wmv|flv|3gp|ogv|ts)$/i;
const SPLIT_FOLDERS = ["train", "val", "test"];
export const UNLABELLED = "unlabelled";

/** Whether a path names a video by its extension. */
export const isVideoFile = (path: string) => VIDEO_EXT.test(path);

export interface VideoItem {
  /** the file */
  path: string;
  /** the sample's name: its path inside the folder given, or the file's name */
  name: string;
  /** the class folder's name, or UNLABELLED */
  className: string;
  split: string;
}

/** A folder's entries (hidden ones left out), sorted, symlinks followed. */
async function entries(
  dir: string,
): Promise<{ name: string; isFile: boolean; isDirectory: boolean }[]> {
  const out = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.startsWith(".")) continue;
      const st = e.isSymlink ? await Deno.stat(join(dir, e.name)).catch(() => null) : e;
      if (st) out.push({ name: e.name, isFile: st.isFile, isDirectory: st.isDirectory });
    }
  } catch (e) {
    throw new DataError(dir, null, `cannot read the folder (${(e as Error).message})`);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The videos of a folder of class folders (videos directly inside are unlabelled). */
async function classFolder(root: string, dir: string, split: string): Promise<VideoItem[]> {
  const items: VideoItem[] = [];
  for (const e of await entries(dir)) {
    const path = join(dir, e.name);
    if (e.isFile && VIDEO_EXT.test(e.name)) {
      items.push({ path, name: relative(root, path), className: UNLABELLED, split });
    } else if (e.isDirectory) {
      for (const v of await entries(path)) {
        if (!v.isFile || !VIDEO_EXT.test(v.name)) continue;
        const file = join(path, v.name);
        items.push({ path: file, name: relative(root, file), className: e.name, split });
      }
    }
  }
  return items;
}

/** A folder's videos, by split folders where it has them. */
async function folderVideos(root: string): Promise<VideoItem[]> {
  const splits = (await entries(root)).filter((e) =>
    e.isDirectory && SPLIT_FOLDERS.includes(e.name)
  );
  if (!splits.length) return await classFolder(root, root, "all");
  const parts = await Promise.all(splits.map((s) => classFolder(root, join(root, s.name), s.name)));
  return parts.flat();
}

/** Every video of the inputs (files and folders), each name once. */
export async function listVideos(inputs: string[]): Promise<VideoItem[]> {
  const items: VideoItem[] = [];
  for (const input of inputs) {
    const st = await Deno.stat(input).catch((e) => {
      throw new DataError(input, null, `cannot open (${(e as Error).message})`);
    });
    if (!st.isDirectory) {
      items.push({ path: input, name: basename(input), className: UNLABELLED, split: "all" });
      continue;
    }
    const found = await folderVideos(input);
    if (!found.length) throw new DataError(input, null, "no video files in the folder");
    items.push(...found);
  }
  const seen = new Map<string, string>();
  for (const it of items) {
    const other = seen.get(it.name);
    if (other) throw new DataError(it.path, null, `same sample name "${it.name}" as ${other}`);
    seen.set(it.name, it.path);
  }
  return items;
}

/** The class names, sorted, with UNLABELLED last where some video has no class. */
export function classesOf(items: VideoItem[]): string[] {
  const named = [...new Set(items.map((i) => i.className))].filter((c) => c !== UNLABELLED).sort();
  return items.some((i) => i.className === UNLABELLED) ? [...named, UNLABELLED] : named;
}
