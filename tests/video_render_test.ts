// `heatformer render --video`: vtest.avi's tracked people drawn over its frames, as a contact sheet
// (its pixels checked against the frames decoded here) and as an MP4 (read back by ffprobe), the
// output rules (--force, never an input, a temporary file renamed), and the PNG writer's row
// filters read back losslessly by FFmpeg. About 20 s on 2 cores.
import { join } from "node:path";
import { shrink, trackColour } from "../data/draw.ts";
import { SkeletonFile, type SkeletonRecord } from "../data/schema.ts";
import { decodeVideo, type Frame, probeVideo } from "../data/video.ts";
import { encodePng } from "../io/png.ts";
import { assert, assertEquals } from "./assert.ts";
import { cli } from "./cli.ts";
import { decodePng } from "./pictures.ts";
import { MESSI, NO_FFMPEG, NO_MODELS, NO_SAMPLES, videoTest, VTEST } from "./video.ts";

/** A picture or video's frames as raw RGB, by FFmpeg. */
async function ffmpegRgb(path: string): Promise<Uint8Array> {
  const args = ["-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"];
  const out = await new Deno.Command("ffmpeg", { args, stdout: "piped" }).output();
  assert(out.success, `ffmpeg read ${path}`);
  return out.stdout;
}

videoTest("PNG: rows filtered, read back by FFmpeg pixel for pixel", [
  NO_FFMPEG,
  NO_SAMPLES,
], async (dir) => {
  // a frame of real footage (sub, average and Paeth each win some of its rows) and made-up bytes
  const frame = (await vtestFrames(1))[0];
  const W = 61,
    H = 37,
    noise = new Uint8Array(W * H * 3).map((_, i) => (i * 7919 + (i >> 5)) % 256);
  for (const [rgb, w, h] of [[frame.rgb, 768, 576], [noise, W, H]] as const) {
    const path = join(dir, "p.png"), png = encodePng(rgb, w, h);
    await Deno.writeFile(path, png);
    const back = await ffmpegRgb(path);
    assertEquals(back.length, rgb.length);
    assert(back.every((v, i) => v === rgb[i]), "the same pixels");
    if (w === 768) assertEquals([...(await decodePng(png)).filters].sort(), [1, 3, 4]);
  }
});

/** ffprobe's width, height, rate and counted frames of a video's first stream. */
async function probeFrames(path: string) {
  const args = ["-v", "error", "-count_frames", "-select_streams", "v:0", "-of", "json"];
  const entries = ["-show_entries", "stream=width,height,r_frame_rate,nb_read_frames"];
  const out = await new Deno.Command("ffprobe", {
    args: [...args, ...entries, path],
    stdout: "piped",
  })
    .output();
  const s = JSON.parse(new TextDecoder().decode(out.stdout)).streams[0];
  return [s.width, s.height, s.r_frame_rate, Number(s.nb_read_frames)];
}

/** The first `n` frames of vtest.avi at 5 frames/s. */
async function vtestFrames(n: number): Promise<Frame[]> {
  const frames: Frame[] = [];
  for await (const f of decodeVideo(await probeVideo(VTEST), { fps: 5 })) {
    frames.push(f);
    if (frames.length === n) break;
  }
  return frames;
}

/**
 * A tile of the sheet against the frame it shows: the pixels that differ all lie near a person
 * (their keypoints' box, widened for the lines, the joints and the number above the head) or
 * under the time in the top left corner; at each person's confident joints, their track's colour.
 */
function checkTile(
  sheet: Uint8Array,
  sheetWidth: number,
  at: [number, number],
  raw: Frame,
  r: SkeletonRecord,
  t: number,
) {
  const tile = shrink(raw, 384), s = raw.width / 384, V = 17;
  const px = (x: number, y: number) => {
    const i = ((at[1] + y) * sheetWidth + at[0] + x) * 3;
    return [sheet[i], sheet[i + 1], sheet[i + 2]];
  };
  const boxes: number[][] = [], joints: [number, number, number][] = [];
  for (let m = 0; m < r.persons; m++) {
    const o = (m * r.frames + t) * V, xs = [], ys = [];
    for (let j = 0; j < V; j++) {
      if (r.score![o + j] < 0.2) continue;
      const x = r.keypoint[2 * (o + j)] / s, y = r.keypoint[2 * (o + j) + 1] / s;
      xs.push(x), ys.push(y), joints.push([m, Math.floor(x), Math.floor(y)]);
    }
    if (xs.length) {
      boxes.push([
        Math.min(...xs) - 8,
        Math.min(...ys) - 22,
        Math.max(...xs) + 8,
        Math.max(...ys) + 8,
      ]);
    }
  }
  let changed = 0, stray = 0;
  for (let y = 0; y < tile.height; y++) {
    for (let x = 0; x < tile.width; x++) {
      const i = (y * tile.width + x) * 3, p = px(x, y);
      if (p.every((v, c) => v === tile.rgb[i + c])) continue;
      changed++;
      const near = boxes.some(([x1, y1, x2, y2]) => x >= x1 && x <= x2 && y >= y1 && y <= y2);
      if (!near && !(x < 40 && y < 16)) stray++;
    }
  }
  assert(changed > 100, `only ${changed} pixels drawn`);
  assertEquals(stray, 0, "pixels changed away from every person");
  const coloured = joints.filter(([m, x, y]) => px(x, y).every((v, c) => v === trackColour(m)[c]));
  // a joint may lie under another person's line or number
  assert(coloured.length >= 0.8 * joints.length, `${coloured.length} of ${joints.length} joints`);
}

videoTest("render --video: vtest.avi's tracked people over its frames, a sheet and an MP4", [
  NO_FFMPEG,
  NO_SAMPLES,
  NO_MODELS,
], async (dir) => {
  const poses = join(dir, "poses.arrow"),
    sheet = join(dir, "sheet.png"),
    mp4 = join(dir, "out.mp4");
  const made = await cli(
    ...["poses", VTEST, "-o", poses, "--model", "multipose", "--fps", "5", "--end", "2"],
    ...["--max-persons", "6"],
  );
  assertEquals(made.code, 0, made.stderr);
  const f = await SkeletonFile.open(poses);
  const rec = await f.read(0).finally(() => f.close());
  assertEquals([rec.frames, rec.persons >= 3], [10, true]);

  // 4 frames, evenly spaced (0, 3, 6, 9), 2 x 2 tiles of 384 x 288
  const r = await cli("render", poses, "--video", VTEST, "-o", sheet, "--frames", "4", "--json");
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout), { out: sheet, frames: 4, of: 10, persons: rec.persons });
  const px = await ffmpegRgb(sheet);
  assertEquals(px.length, 768 * 576 * 3, "768 x 576");
  const raw = await vtestFrames(10);
  [0, 3, 6, 9].forEach((t, k) =>
    checkTile(px, 768, [(k % 2) * 384, Math.floor(k / 2) * 288], raw[t], rec, t)
  );

  const v = await cli("render", poses, "--video", VTEST, "-o", mp4);
  assertEquals(v.code, 0, v.stderr);
  assertEquals(await probeFrames(mp4), [768, 576, "5/1", 10]);
  const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes(".tmp"));
  assertEquals(left, [], "no temporary file left");

  // the output rules of the other commands
  const again = await cli("render", poses, "--video", VTEST, "-o", mp4);
  assertEquals(again.code, 2, again.stderr);
  assert(again.stderr.includes("already exists; add --force"), again.stderr);
  const forced = await cli("render", poses, "--video", VTEST, "-o", mp4, "--force");
  assertEquals(forced.code, 0, forced.stderr);
  const input = await cli("render", poses, "--video", VTEST, "-o", VTEST, "--force");
  assertEquals(input.code, 2, input.stderr);
  assert(input.stderr.includes("would replace the input"), input.stderr);
  const other = await cli(
    "render",
    poses,
    "--video",
    MESSI,
    "--sample",
    "vtest.avi",
    "-o",
    sheet,
    "--force",
  );
  assertEquals(other.code, 1, other.stderr);
  assert(other.stderr.includes("poses of a 768 x 576 video"), other.stderr);
  const none = await cli("render", poses, "--video", MESSI, "-o", sheet, "--force");
  assertEquals(none.code, 2, none.stderr);
  assert(none.stderr.includes("no sample made from"), none.stderr);
  const txt = await cli("render", poses, "--video", VTEST, "-o", join(dir, "out.txt"));
  assertEquals(txt.code, 2, txt.stderr);
});

videoTest("render --video without a dataset: poses estimated on the way", [
  NO_FFMPEG,
  NO_SAMPLES,
  NO_MODELS,
], async (dir) => {
  const sheet = join(dir, "sheet.png");
  const r = await cli(
    ...["render", "--video", VTEST, "--fps", "5", "--end", "1", "-o", sheet],
    ...["--frames", "2", "--width", "200", "--json"],
  );
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).frames, 2);
  assertEquals((await ffmpegRgb(sheet)).length, 2 * 200 * 150 * 3, "two tiles of 200 x 150");
});
