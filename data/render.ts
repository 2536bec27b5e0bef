// `heatformer render`: one sample's heatmap volume (deterministic test-time pipeline) as a
// contact sheet (PNG and SVG) with the skeleton drawn over it, each tile labelled with its
// frame under a title naming the sample and its class, or as a raw float32 .npy.
import { encodeNpy, encodePng } from "../io/png.ts";
import { escapeXml, FONT, writeSvg } from "../plots/render.ts";
import { Rng } from "../layers/init.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { deviceBatch, hostBatch, type InputSpec } from "./batches.ts";
import { layoutByName } from "./layouts.ts";
import { DataError, type SkeletonFile } from "./schema.ts";

export interface RenderOptions {
  sample: string;
  clip: number;
  clips: number;
  out: string;
  spec: InputSpec;
}

export async function renderSample(
  rt: Runtime,
  file: SkeletonFile,
  o: RenderOptions,
): Promise<{ shape: number[]; path: string }> {
  const i = file.index.names.indexOf(o.sample);
  if (i < 0) throw new DataError(file.path, o.sample, "no sample of that name");
  if (o.clip < 0 || o.clip >= o.clips) {
    throw new DataError(file.path, o.sample, `clip ${o.clip} outside 0..${o.clips - 1}`);
  }
  const rec = await file.read(i);
  const spec: InputSpec = { ...o.spec, kind: "heatmap" };
  const hb = hostBatch([rec], file.meta, spec, {
    train: false,
    clips: o.clips,
    flipTest: false,
    flipProb: 0,
    augment: { rotation: 0, noise: 0, shift: 0 },
  }, new Rng(0));
  // Render only clip K: one view of the sample.
  const layout = layoutByName(file.meta.layout);
  const V = layout.joints.length, M = spec.persons, T0 = spec.clipLen;
  const one = {
    ...hb,
    views: 1,
    xy: hb.xy!.slice(o.clip * M * T0 * V * 2, (o.clip + 1) * M * T0 * V * 2),
    score: hb.score!.slice(o.clip * M * T0 * V, (o.clip + 1) * M * T0 * V),
  };
  const { input } = rt.tidy(() => deviceBatch(rt, one, file.meta, spec));
  const vol = Float32Array.from(await rt.read(input));
  rt.dispose(input);
  const [, C, T, S] = input.shape;
  if (o.out.endsWith(".npy")) {
    await Deno.writeFile(o.out, encodeNpy(vol, [1, C, T, S, S]));
    return { shape: [1, C, T, S, S], path: o.out };
  }
  if (!o.out.endsWith(".png")) throw new Error(`--out must end in .png or .npy, got "${o.out}"`);
  const xy = one.xy, sc = one.score;
  // 12 frames (or all, if fewer), 4 columns, each tile S x zoom.
  const frames = Array.from(
    { length: Math.min(12, T) },
    (_, k) => Math.floor((k * T) / Math.min(12, T)),
  );
  const zoom = Math.max(1, Math.floor(224 / S)),
    tile = S * zoom,
    cols = 4,
    rows = Math.ceil(frames.length / cols);
  const W = cols * tile, H = rows * tile;
  const img = new Uint8Array(W * H * 3);
  frames.forEach((t, k) => {
    const ox = (k % cols) * tile, oy = Math.floor(k / cols) * tile;
    for (let y = 0; y < tile; y++) {
      for (let x = 0; x < tile; x++) {
        let v = 0;
        for (let c = 0; c < C; c++) {
          v = Math.max(v, vol[((c * T + t) * S + Math.floor(y / zoom)) * S + Math.floor(x / zoom)]);
        }
        const p = ((oy + y) * W + ox + x) * 3;
        // "hot" colour map: black -> red -> yellow -> white
        img[p] = Math.min(255, v * 3 * 255);
        img[p + 1] = Math.min(255, Math.max(0, v * 3 - 1) * 255);
        img[p + 2] = Math.min(255, Math.max(0, v * 3 - 2) * 255);
      }
    }
    // skeleton over the heatmap, in cyan; tile borders in grey
    for (let m = 0; m < M; m++) {
      for (const [a, b] of layout.limbs) {
        const ia = (m * T + t) * V + a, ib = (m * T + t) * V + b;
        if (sc[ia] <= 0 || sc[ib] <= 0) continue;
        const steps = tile;
        for (let s = 0; s <= steps; s++) {
          const u = s / steps;
          const x = Math.round((xy[ia * 2] + u * (xy[ib * 2] - xy[ia * 2])) * zoom);
          const y = Math.round((xy[ia * 2 + 1] + u * (xy[ib * 2 + 1] - xy[ia * 2 + 1])) * zoom);
          if (x < 0 || y < 0 || x >= tile || y >= tile) continue;
          const p = ((oy + y) * W + ox + x) * 3;
          img[p] = 0;
          img[p + 1] = 200;
          img[p + 2] = 255;
        }
      }
    }
    for (let i2 = 0; i2 < tile; i2++) {
      for (const [x, y] of [[i2, 0], [0, i2]]) {
        const p = ((oy + y) * W + ox + x) * 3;
        img[p] = img[p + 1] = img[p + 2] = 90;
      }
    }
  });
  const title = `${rec.name}: ${file.meta.classes[rec.label] ?? `class ${rec.label}`} ` +
    `(clip ${o.clip + 1} of ${o.clips}, ${C} channels x ${T} frames of ${S} x ${S})`;
  const labels = frames.map((t, k) => ({
    x: (k % cols) * tile,
    y: Math.floor(k / cols) * tile,
    t,
  }));
  await writeSvg(
    o.out.replace(/\.png$/, ""),
    contactSheetSvg(encodePng(img, W, H), W, H, title, labels),
  );
  return { shape: [1, C, T, S, S], path: o.out };
}

/** The sheet as SVG: the raster under a title line, each tile labelled with its frame. */
function contactSheetSvg(
  png: Uint8Array,
  W: number,
  H: number,
  title: string,
  tiles: { x: number; y: number; t: number }[],
): string {
  const head = 28, b64 = btoa(Array.from(png, (c) => String.fromCharCode(c)).join(""));
  const font = `font-family="${FONT}"`;
  const tags = tiles.map(({ x, y, t }) =>
    `<rect x="${x + 3}" y="${head + y + 3}" width="44" height="16" fill="black" opacity="0.6"/>` +
    `<text x="${x + 7}" y="${head + y + 15}" ${font} font-size="11" fill="white">t=${t}</text>`
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ` +
    `width="${W}" height="${H + head}" viewBox="0 0 ${W} ${H + head}">` +
    `<rect width="${W}" height="${H + head}" fill="white"/>` +
    `<text x="6" y="19" ${font} font-size="13" fill="black">${escapeXml(title)}</text>` +
    `<image x="0" y="${head}" width="${W}" height="${H}" xlink:href="data:image/png;base64,${b64}"/>` +
    `${tags.join("")}</svg>`;
}
