// Live video: any input FFmpeg opens (a camera, `-f v4l2 /dev/video0`; a filter graph, `-f lavfi
// testsrc`; a URL; `-`, our stdin; a named pipe), decoded as it comes with no ffprobe first (a
// stream has no duration, and a pipe cannot be read twice). The frame size and rate are those of
// the raw output stream ffmpeg announces on stderr before its first frame; frames are RGB, one at
// a time (data/video.ts), resampled to --fps where given. An input ffmpeg cannot open is one
// DataError naming it, with ffmpeg's own first error.
import { DataError } from "./schema.ts";
import { type DecodeOptions, type Frame, rawFrames, spawnTool, type VideoInfo } from "./video.ts";

/** An FFmpeg input: what follows `-i`, and its format (`-f`) where FFmpeg cannot guess it. */
export interface LiveInput {
  input: string;
  format?: string;
}

/** A live input opened: its stream's size and rate (duration 0: unknown) and its frames. */
export interface LiveVideo {
  info: VideoInfo;
  frames: AsyncGenerator<Frame>;
  /** ends ffmpeg (frames not read to their end) */
  stop(): void;
}

/** The name errors and window names give an input: `-` is stdin. */
export const liveName = (input: string) => input === "-" ? "stdin" : input;

/** Whether an input is read as a live stream: stdin, a URL, a named pipe or a device. */
export async function isLiveInput(input: string): Promise<boolean> {
  if (input === "-" || /^[a-z][a-z0-9+.-]*:\/\//i.test(input)) return true;
  const st = await Deno.stat(input).catch(() => null);
  return !!st && (st.isFifo === true || st.isCharDevice === true);
}

/**
 * ffmpeg's arguments: every line tagged with its level (errors told from the stream
 * description); at most half a second of the stream read before decoding starts (ffmpeg's
 * default, 5 s, would hold back the first frames that long); the cut and resampling as output
 * options (a stream cannot seek); raw RGB out.
 */
function liveArgs(src: LiveInput, o: DecodeOptions): string[] {
  return [
    ...["-hide_banner", "-nostats", "-nostdin", "-v", "level+info", "-analyzeduration", "500000"],
    ...(src.format ? ["-f", src.format] : []),
    ...["-i", src.input],
    ...(o.start ? ["-ss", String(o.start)] : []),
    ...(o.end !== undefined ? ["-to", String(o.end)] : []),
    ...(o.fps ? ["-vf", `fps=${o.fps}`] : []),
    ...["-an", "-sn", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
  ];
}

/** The size and rate of the line ffmpeg writes for its raw output stream, if it is that line. */
export function outputStream(line: string): { width: number; height: number; fps: number } | null {
  const m = /Stream #\d+:\d+.*: Video: rawvideo.*?, (\d+)x(\d+)\b.*?, (\d+(?:\.\d+)?)(k?) fps/
    .exec(line);
  if (!m) return null;
  return { width: Number(m[1]), height: Number(m[2]), fps: Number(m[3]) * (m[4] ? 1000 : 1) };
}

type StreamSize = ReturnType<typeof outputStream>;

/** A stream's lines as they come. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const all = (rest + chunk).split("\n");
    rest = all.pop()!;
    yield* all;
  }
  if (rest) yield rest;
}

/**
 * Reads ffmpeg's stderr to its end: `stream` resolves with the output stream's size and rate
 * (null where ffmpeg ends before announcing it); `errors` keeps its first 20 error lines.
 */
function watchLog(stderr: ReadableStream<Uint8Array>) {
  const errors: string[] = [];
  let found: (s: StreamSize) => void = () => {};
  const stream = new Promise<StreamSize>((r) => found = r);
  const done = (async () => {
    let output = false;
    for await (const line of lines(stderr)) {
      const e = /\[(?:error|fatal|panic)\] (.*)$/.exec(line);
      if (e && errors.length < 20) errors.push(e[1]);
      output ||= line.includes("Output #0");
      const s = output ? outputStream(line) : null;
      if (s) found(s);
    }
  })().finally(() => found(null));
  return { stream, errors, done };
}

/** ffmpeg's first error line, its "INPUT: " prefix dropped. */
function firstError(errors: string[], input: string): string {
  const e = errors[0] ?? "no message";
  return e.startsWith(`${input}: `) ? e.slice(input.length + 2) : e.replace(/^pipe:: /, "");
}

/**
 * Opens a live input: resolves once ffmpeg has opened it and announced its output stream, or
 * refuses it (ffmpeg missing, or unable to open it) naming the input. `stop` ends ffmpeg where
 * the frames are not read to their end.
 */
export async function openLive(src: LiveInput, o: DecodeOptions = {}): Promise<LiveVideo> {
  const name = liveName(src.input);
  const stdin = src.input === "-" || src.input === "pipe:0" ? "inherit" : "null";
  const child = spawnTool("ffmpeg", liveArgs(src, o), name, stdin);
  const log = watchLog(child.stderr);
  const stream = await log.stream;
  if (!stream) {
    await child.status;
    throw new DataError(
      name,
      null,
      `cannot open it (ffmpeg: ${firstError(log.errors, src.input)})`,
    );
  }
  const fps = o.fps ?? stream.fps;
  const info = { path: name, width: stream.width, height: stream.height, fps, duration: 0 };
  async function* frames(): AsyncGenerator<Frame> {
    const n = yield* rawFrames(child, info, fps, o.start ?? 0);
    const [status] = await Promise.all([child.status, log.done]);
    const why = firstError(log.errors, src.input);
    if (!status.success) {
      throw new DataError(name, null, `ffmpeg stopped after ${n} frames (${why})`);
    }
    if (n === 0) throw new DataError(name, null, "no frame decoded");
  }
  // SIGKILL: ffmpeg takes a single SIGTERM as a request to finish, which waits on a blocked read
  // of a stalled stream (a paused pipe, a camera gone quiet); its output is not wanted any more
  const stop = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* it had already exited */ }
  };
  return { info, frames: frames(), stop };
}
