// A video's tracked people drawn over its frames (`heatformer render --video`): each person's
// limbs and joints in their track's colour with the track's number above their head, as a contact
// sheet (a grid of evenly spaced frames, each labelled with its time in seconds, one PNG) or as a
// video (every frame, encoded by ffmpeg from its stdin). The frames are decoded again at the
// poses' rate from their first frame's time, so frame t of the video is frame t of the poses.
import { encodePng } from "../io/png.ts";
import { dot, label, line, paste, type Raster, shrink, textSize, trackColour } from "./draw.ts";
import { COCO17 } from "./layouts.ts";
import { keypointBox, MIN_KEYPOINT_SCORE } from "./pose/estimator.ts";
import { DataError } from "./schema.ts";
import { decodeVideo, type Frame, spawnTool, type VideoInfo } from "./video.ts";

const V = 17;

/** A video's tracked people: M x T x 17 x 2 pixels and M x T x 17 scores, frame t at start + t / fps. */
export interface TrackedPoses {
  fps: number;
  start: number;
  frames: number;
  persons: number;
  keypoint: Float32Array;
  score: Float32Array;
}

/** Draws the people of frame t over it: limbs, joints, and the track's number above the head. */
export function drawPoses(frame: Raster, p: TrackedPoses, t: number): void {
  const thick = Math.max(2, Math.round(frame.width / 256));
  const scale = Math.max(2, Math.round(frame.width / 200));
  for (let m = 0; m < p.persons; m++) {
    const o = (m * p.frames + t) * V;
    const xy = p.keypoint.subarray(2 * o, 2 * (o + V)), sc = p.score.subarray(o, o + V);
    const seen = (j: number) => sc[j] >= MIN_KEYPOINT_SCORE;
    if (![...sc.keys()].some(seen)) continue;
    const c = trackColour(m), at = (j: number) => [xy[2 * j], xy[2 * j + 1]] as const;
    for (const [a, b] of COCO17.limbs) if (seen(a) && seen(b)) line(frame, at(a), at(b), thick, c);
    for (let j = 0; j < V; j++) if (seen(j)) dot(frame, xy[2 * j], xy[2 * j + 1], 2 * thick, c);
    const [x1, y1, x2] = keypointBox(xy, sc), text = String(m);
    const { width, height } = textSize(text, scale);
    label(frame, (x1 + x2 - width) / 2, y1 - height - 2 * thick, text, scale, c);
  }
}

/** The video's first `p.frames` frames at the poses' rate, each with its people drawn. */
async function* drawnFrames(info: VideoInfo, p: TrackedPoses): AsyncGenerator<Frame> {
  for await (const f of decodeVideo(info, { fps: p.fps, start: p.start })) {
    drawPoses(f, p, f.index);
    yield f;
    if (f.index + 1 === p.frames) return;
  }
  throw new DataError(info.path, null, `fewer frames than the poses' ${p.frames} (another video?)`);
}

export interface SheetOptions {
  /** frames shown, evenly spaced from the first to the last */
  tiles: number;
  /** pixels across a tile (at most the video's width) */
  width: number;
}

/** A contact sheet of evenly spaced frames, ceil(sqrt(n)) a row, written as a PNG. */
export async function writeSheet(
  info: VideoInfo,
  p: TrackedPoses,
  path: string,
  o: SheetOptions,
): Promise<{ frames: number[]; width: number; height: number }> {
  const n = Math.min(o.tiles, p.frames);
  const picks = [...Array(n).keys()].map((k) =>
    n > 1 ? Math.round(k * (p.frames - 1) / (n - 1)) : 0
  );
  const cols = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols);
  const tw = Math.min(o.width, info.width),
    th = Math.max(1, Math.round(info.height * tw / info.width));
  const sheet = {
    width: cols * tw,
    height: rows * th,
    rgb: new Uint8Array(cols * tw * rows * th * 3),
  };
  let k = 0;
  for await (const f of drawnFrames(info, p)) {
    if (f.index !== picks[k]) continue;
    const tile = shrink(f, tw);
    label(tile, 0, 0, f.time.toFixed(1), 2, [255, 255, 255]);
    paste(sheet, tile, (k % cols) * tw, Math.floor(k / cols) * th);
    if (++k === n) break;
  }
  await Deno.writeFile(path, encodePng(sheet.rgb, sheet.width, sheet.height));
  return { frames: picks, width: sheet.width, height: sheet.height };
}

/** ffmpeg encoding raw RGB frames from its stdin into `path`. */
function encoder(info: VideoInfo, fps: number, path: string) {
  const args = [
    ...["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"],
    ...["-video_size", `${info.width}x${info.height}`, "-framerate", String(fps), "-i", "pipe:0"],
    // 4:2:0 wants even sides
    ...["-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", path],
  ];
  const child = spawnTool("ffmpeg", args, path, "piped");
  child.stdout.cancel();
  const stderr = new Response(child.stderr).text();
  const stdin = child.stdin.getWriter();
  /** Its end: an error where it failed, with its last line. */
  const done = async () => {
    const status = await child.status, last = (await stderr).trim().split("\n").pop();
    if (!status.success) throw new Error(`${path}: ffmpeg could not encode the frames (${last})`);
  };
  return { child, stdin, done };
}

/**
 * Every frame with its people drawn, encoded by ffmpeg into `path` (its format by its extension:
 * .mp4 is H.264 where ffmpeg has it) at the poses' rate; returns the frames written.
 */
export async function writeVideo(info: VideoInfo, p: TrackedPoses, path: string): Promise<number> {
  let enc: ReturnType<typeof encoder> | null = null, n = 0;
  try {
    for await (const f of drawnFrames(info, p)) {
      // started with the first frame: ffmpeg is known to be there by then
      enc ??= encoder(info, p.fps, path);
      await enc.stdin.write(f.rgb);
      n++;
    }
    await enc!.stdin.close();
  } catch (e) {
    if (!enc) throw e;
    // ffmpeg gone (its stdin closed under us): its own reason
    if (e instanceof Deno.errors.BrokenPipe) await enc.done();
    try {
      enc.child.kill();
    } catch { /* it had already exited */ }
    throw e;
  }
  await enc!.done();
  return n;
}
