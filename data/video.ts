// Videos decoded by FFmpeg as a stream: `ffprobe` for the frame rate, size and duration, then
// `ffmpeg ... -f rawvideo -pix_fmt rgb24 pipe:1` read one frame at a time (a video is never
// whole in memory), resampled to a constant rate (`fps`) and cut to [start, end) seconds.
// Anything ffmpeg cannot read (missing tool, not a video, zero-length, truncated) is one
// DataError naming the file.
import { DataError } from "./schema.ts";

/** What ffprobe says of a video's first video stream. */
export interface VideoInfo {
  path: string;
  width: number;
  height: number;
  /** frames per second (the stream's average rate, else its base rate) */
  fps: number;
  /** seconds (the stream's, else the container's; 0 when neither says) */
  duration: number;
}

/** One decoded frame: height x width x 3 bytes, RGB. */
export interface Frame {
  /** 0, 1, ... in the decoded (resampled, cut) stream */
  index: number;
  /** seconds from the video's start */
  time: number;
  width: number;
  height: number;
  /** height x width x 3 */
  rgb: Uint8Array;
}

export interface DecodeOptions {
  /** resample to this rate (default: the video's own) */
  fps?: number;
  /** seconds; default 0 */
  start?: number;
  /** seconds (exclusive); default the end */
  end?: number;
}

const INSTALL = "install FFmpeg (Debian / Ubuntu: apt-get install ffmpeg; macOS: brew install " +
  "ffmpeg; Windows: winget install ffmpeg)";

/**
 * Runs ffprobe / ffmpeg, turning a missing executable into a message naming the package; its
 * stdin is ours where it reads the input from there (`-i -`), piped where it encodes our frames.
 */
export function spawnTool(
  tool: string,
  args: string[],
  file: string,
  stdin: "null" | "inherit" | "piped" = "null",
): Deno.ChildProcess {
  try {
    return new Deno.Command(tool, { args, stdin, stdout: "piped", stderr: "piped" }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DataError(file, null, `cannot decode: ${tool} is not installed (${INSTALL})`);
    }
    throw e;
  }
}

/** The last meaningful line ffmpeg wrote, without its "[demuxer @ 0x...]" or "FILE: " prefix. */
function lastLine(stderr: string, file: string): string {
  const lines = stderr.split("\n")
    .map((l) => l.replace(/^\[[^\]]*\]\s*/, "").replace(`${file}: `, "").trim());
  return lines.filter((l) => l.length > 0).pop() ?? "no message";
}

/** Refuses a missing, unreadable or zero-length file before ffmpeg sees it. */
async function checkFile(path: string): Promise<void> {
  const st = await Deno.stat(path).catch((e) => {
    throw new DataError(path, null, `cannot open (${(e as Error).message})`);
  });
  if (!st.isFile) throw new DataError(path, null, "not a file");
  if (st.size === 0) throw new DataError(path, null, "zero-length file, not a video");
}

const rate = (s: string | undefined) => {
  const [n, d] = (s ?? "").split("/").map(Number);
  return n > 0 && d > 0 ? n / d : 0;
};

/** ffprobe's JSON for the first video stream, as a VideoInfo. */
export async function probeVideo(path: string): Promise<VideoInfo> {
  await checkFile(path);
  const args = ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"];
  const out = await spawnTool("ffprobe", [...args, "-select_streams", "v:0", path], path).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new DataError(path, null, `not a readable video (${lastLine(err, path)})`);
  }
  const json = JSON.parse(new TextDecoder().decode(out.stdout));
  const s = json.streams?.[0];
  if (!s || !(s.width > 0 && s.height > 0)) {
    throw new DataError(path, null, "not a video (ffprobe finds no video stream)");
  }
  const fps = rate(s.avg_frame_rate) || rate(s.r_frame_rate);
  if (!(fps > 0)) throw new DataError(path, null, "not a video (no frame rate)");
  const duration = Number(s.duration) || Number(json.format?.duration) || 0;
  return { path, width: s.width, height: s.height, fps, duration };
}

/**
 * ffmpeg's arguments: cut, resample to a constant rate (a video shorter than one frame of it, a
 * picture, still gives its frame: eof_action=pass), raw RGB on stdout.
 */
function decodeArgs(info: VideoInfo, fps: number, o: DecodeOptions): string[] {
  const cut = [
    ...(o.start ? ["-ss", String(o.start)] : []),
    ...(o.end !== undefined ? ["-to", String(o.end)] : []),
  ];
  return [
    ...["-v", "error", "-nostdin", ...cut, "-i", info.path],
    ...["-vf", `fps=${fps}:eof_action=pass`, "-an", "-sn"],
    ...["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
  ];
}

/** Reads exactly `n` bytes from a stream reader, or fewer at its end. */
async function readExactly(
  reader: ReadableStreamBYOBReader,
  n: number,
): Promise<Uint8Array> {
  let buf = new Uint8Array(n), got = 0;
  while (got < n) {
    const { value, done } = await reader.read(buf.subarray(got));
    // the read transfers the buffer: keep the new one, even when the stream is done
    if (value) buf = new Uint8Array(value.buffer);
    if (done || !value) break;
    got += value.byteLength;
  }
  return got === n ? buf : buf.subarray(0, got);
}

/**
 * The frames a running ffmpeg writes as raw RGB on its stdout, `width` x `height` each, the
 * first at `start` seconds, one every 1 / fps. A consumer that stops early (break, an error)
 * stops ffmpeg too.
 */
export async function* rawFrames(
  child: Deno.ChildProcess,
  size: { width: number; height: number },
  fps: number,
  start: number,
): AsyncGenerator<Frame, number> {
  const reader = child.stdout.getReader({ mode: "byob" });
  const { width, height } = size, bytes = width * height * 3;
  let index = 0, complete = false;
  try {
    for (;;) {
      const rgb = await readExactly(reader, bytes);
      if (rgb.length < bytes) break;
      yield { index, time: start + index / fps, width, height, rgb };
      index++;
    }
    complete = true;
  } finally {
    if (!complete) {
      await reader.cancel().catch(() => {});
      try {
        child.kill();
      } catch { /* it had already exited */ }
    }
  }
  return index;
}

/**
 * The video's frames, one at a time, at `fps` (default the video's own) between start and
 * end. A file that ends well before the duration its header announces is refused as
 * truncated; so is one ffmpeg cannot decode at all.
 */
export async function* decodeVideo(
  info: VideoInfo,
  o: DecodeOptions = {},
): AsyncGenerator<Frame> {
  const fps = o.fps ?? info.fps;
  const child = spawnTool("ffmpeg", decodeArgs(info, fps, o), info.path);
  const stderr = new Response(child.stderr).text();
  const frames = yield* rawFrames(child, info, fps, o.start ?? 0);
  const status = await child.status;
  checkDecoded(info, { ...o, fps }, frames, status.success, await stderr);
}

/** Refuses a decode that failed, yielded nothing, or stopped well short of the duration. */
function checkDecoded(
  info: VideoInfo,
  o: DecodeOptions & { fps: number },
  frames: number,
  ok: boolean,
  stderr: string,
): void {
  const bad = (p: string) => new DataError(info.path, null, p);
  if (!ok) throw bad(`ffmpeg could not decode it (${lastLine(stderr, info.path)})`);
  if (frames === 0) throw bad("no frame decoded (not a video, or nothing in the cut)");
  // a file cut short: ffmpeg stops at its last readable frame and exits 0 (judged where the
  // header announces a duration; a picture or a stream announces none)
  const end = Math.min(o.end ?? Infinity, info.duration);
  const reached = (o.start ?? 0) + frames / o.fps;
  if (info.duration > 0 && reached < end - Math.max(1, 3 / o.fps)) {
    const why = stderr.trim() ? `; ffmpeg: ${lastLine(stderr, info.path)}` : "";
    throw bad(
      `truncated: decoding stopped at ${reached.toFixed(2)} s of the ${
        end.toFixed(2)
      } s its header announces${why}`,
    );
  }
}
