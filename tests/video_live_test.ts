// Live video inputs for `predict`: which inputs are read live, real footage fed to stdin while the
// predictions come out (each window's line before the stream ends), and inputs FFmpeg cannot
// open. The footage test takes about half a minute on 2 cores (MoveNet Lightning, 4 s of
// vtest.avi at 5 frames/s).
import { join } from "node:path";
import { isLiveInput, openLive, outputStream } from "../data/video_live.ts";
import { assert, assertEquals } from "./assert.ts";
import { cli, finished, spawnCli } from "./cli.ts";
import { coco17Run, NO_FFMPEG, NO_MODELS, NO_SAMPLES, videoTest, VTEST } from "./video.ts";

videoTest("live inputs: stdin, URLs, named pipes and devices; files are not", [], async (dir) => {
  const fifo = join(dir, "fifo"), file = join(dir, "clip.mp4");
  assert((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success, "mkfifo");
  await Deno.writeTextFile(file, "");
  for (
    const live of ["-", "rtsp://camera.local/stream", "http://host/clip.mp4", fifo, "/dev/null"]
  ) {
    assert(await isLiveInput(live), live);
  }
  for (const notLive of [file, join(dir, "missing.mp4"), "lavfi-looking=name"]) {
    assert(!await isLiveInput(notLive), notLive);
  }
});

Deno.test("live inputs: the size and rate of ffmpeg's output stream line", () => {
  const line = (size: string, rate: string) =>
    `[info]   Stream #0:0: Video: rawvideo (RGB[24] / 0x18424752), rgb24(progressive), ${size} ` +
    `[SAR 1:1 DAR 4:3], q=2-31, 46080 kb/s, ${rate} fps, ${rate} tbn`;
  assertEquals(outputStream(line("320x240", "25")), { width: 320, height: 240, fps: 25 });
  assertEquals(outputStream(line("1920x1080", "29.97")), { width: 1920, height: 1080, fps: 29.97 });
  assertEquals(outputStream(line("64x48", "1k"))?.fps, 1000);
  assertEquals(outputStream("[info]   Stream #0:0: Video: rawvideo, rgb24, 320x240, 25 tbr"), null);
});

videoTest(
  "live inputs: a lavfi source decoded as it comes, resampled and cut",
  [NO_FFMPEG],
  async () => {
    const input = { input: "testsrc=duration=3:size=64x48:rate=25", format: "lavfi" };
    for (
      const [o, times] of [
        [{}, [0, 0.04, 0.08]],
        [{ fps: 5, start: 1, end: 2 }, [1, 1.2, 1.4, 1.6, 1.8]],
      ] as const
    ) {
      const v = await openLive(input, o);
      assertEquals([v.info.width, v.info.height, v.info.fps], [64, 48, "fps" in o ? 5 : 25]);
      const got: number[] = [];
      for await (const f of v.frames) got.push(Math.round(f.time * 100) / 100);
      assertEquals(got.slice(0, times.length), [...times]);
      assertEquals(got.length, "fps" in o ? 5 : 75);
    }
  },
);

/** Seconds since `t0`. */
const since = (t0: number) => (performance.now() - t0) / 1000;

/** A child's stdout lines as they come, each with the seconds since `t0` it arrived at. */
function collectLines(child: Deno.ChildProcess, t0: number) {
  const lines: { text: string; at: number }[] = [];
  let first: () => void = () => {};
  const firstLine = new Promise<void>((r) => first = r);
  const done = (async () => {
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const all = (rest + chunk).split("\n");
      rest = all.pop()!;
      for (const text of all) lines.push({ text, at: since(t0) }), first();
    }
  })();
  return { lines, firstLine, done };
}

/** Writes `bytes` to a stream at `seconds` of footage per second of wall clock. */
async function writePaced(
  w: WritableStreamDefaultWriter<Uint8Array>,
  bytes: Uint8Array,
  seconds: number,
) {
  const pieces = Math.max(1, Math.round(seconds * 10));
  for (let k = 0; k < pieces; k++) {
    const from = Math.floor((k * bytes.length) / pieces);
    await w.write(bytes.subarray(from, Math.floor(((k + 1) * bytes.length) / pieces)));
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `predict RUN -` fed `bytes` (a stream of 4 s of footage) at the footage's pace, paused after
 * 3 s of it until the first prediction is out (a prediction printed only at the stream's end, or
 * held in a buffer, never comes: the wait times out and the test fails).
 */
async function streamUntilFirstLine(run: string, bytes: Uint8Array, env: Record<string, string>) {
  const t0 = performance.now(), part = Math.floor(bytes.length * 3 / 4);
  const args = ["predict", run, "-", "--fps", "5", "--window", "1s", "--stride", "1s"];
  const child = spawnCli([...args, "--top-k", "1", "--json"], env, "piped");
  const out = collectLines(child, t0), stderr = new Response(child.stderr).text();
  const stdin = child.stdin.getWriter();
  await writePaced(stdin, bytes.subarray(0, part), 3);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>((r) => timer = setTimeout(() => r("timeout"), 120_000));
  const paused = await Promise.race([out.firstLine.then(() => "line"), timeout]);
  clearTimeout(timer);
  assertEquals(paused, "line", "no window printed while the stream was paused");
  return { child, out, stderr, stdin, rest: bytes.subarray(part), resumed: since(t0), t0 };
}

videoTest("predict RUN -: each window printed as it ends, while the stream still plays", [
  NO_FFMPEG,
  NO_SAMPLES,
  NO_MODELS,
], async (dir) => {
  const run = await coco17Run(dir);
  // 4 s of real footage as a stream: NUT, the packets as recorded
  const nut = await new Deno.Command("ffmpeg", {
    args: ["-v", "error", "-i", VTEST, "-t", "4", "-c", "copy", "-f", "nut", "pipe:1"],
    stdout: "piped",
  }).output();
  assert(nut.success, "ffmpeg cut the clip");
  const s = await streamUntilFirstLine(run, nut.stdout, {});
  await writePaced(s.stdin, s.rest, 1);
  await s.stdin.close();
  const ended = since(s.t0);
  const { code } = await s.child.status;
  await s.out.done;
  assertEquals(code, 0, await s.stderr);
  const windows = s.out.lines.map((l) => JSON.parse(l.text));
  assertEquals(windows.map((w) => [w.name, w.start, w.end]), [
    ["stdin@0.00-1.00s", 0, 1],
    ["stdin@1.00-2.00s", 1, 2],
    ["stdin@2.00-3.00s", 2, 3],
    ["stdin@3.00-4.00s", 3, 4],
  ]);
  assert(windows.every((w) => w.input === "-" && ["a", "b"].includes(w.top[0].class)), "classes");
  const first = s.out.lines[0].at;
  assert(
    first <= s.resumed,
    `first line at ${first} s, after the stream resumed at ${s.resumed} s`,
  );
  console.log(`first window at ${first.toFixed(1)} s, stream ended at ${ended.toFixed(1)} s`);

  // Ctrl-C (SIGINT) ends a stream that has no end of its own: the windows so far printed, exit
  // 130, the temporary folder removed
  const tmp = join(dir, "tmp");
  await Deno.mkdir(tmp);
  const c = await streamUntilFirstLine(run, nut.stdout, { TMPDIR: tmp });
  c.child.kill("SIGINT");
  const stopped = await c.child.status;
  await c.stdin.close().catch(() => {});
  await c.out.done;
  assertEquals(stopped.code, 130, await c.stderr);
  assert((await c.stderr).includes("interrupted (SIGINT)"), await c.stderr);
  assert(c.out.lines.length >= 1 && JSON.parse(c.out.lines[0].text).start === 0, "window 1");
  assertEquals([...Deno.readDirSync(tmp)], [], "the temporary folder removed");
});

videoTest("predict on a live input FFmpeg cannot open: one line naming it, exit 1", [
  NO_FFMPEG,
  NO_MODELS,
], async (dir) => {
  const run = await coco17Run(dir);
  const cases: [string[], string, string][] = [
    [["--input-format", "lavfi", "nosuchfilter"], "nosuchfilter", "No such filter: 'nosuchfilter'"],
    [["--input-format", "v4l2", "/dev/video99"], "/dev/video99", "Cannot open video device"],
    [["-"], "stdin", "Invalid data found when processing input"],
  ];
  for (const [args, name, why] of cases) {
    const child = spawnCli(["predict", run, ...args], {}, "piped");
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("not a video\n")).catch(() => {});
    await w.close().catch(() => {});
    const r = await finished(child);
    assertEquals(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    assert(lines[0].startsWith(`heatformer: error: ${name}: cannot open it (ffmpeg: `), lines[0]);
    assert(lines[0].includes(why), lines[0]);
    assertEquals(r.stdout, "");
  }
  // with --json, the error object names the input too
  const r = await cli("predict", run, "--input-format", "lavfi", "nosuchfilter", "--json");
  assertEquals(JSON.parse(r.stdout).error, {
    message: "nosuchfilter: cannot open it (ffmpeg: No such filter: 'nosuchfilter')",
    file: "nosuchfilter",
    record: null,
    code: 1,
  });
});
