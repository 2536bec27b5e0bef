// Charts as Vega-Lite specifications, rendered headless: vega draws the SVG (no browser, no
// canvas: text is measured by estimate), resvg (WebAssembly) rasterises it to PNG with the
// embedded DejaVu Sans. Every chart is written as both: SVG to read and diff, PNG to look at.
// vega, vega-lite and resvg are imported on first use: training draws no charts, so a first
// `deno task train` never downloads them (deno.json's npm-lazy-caching, lazy-dynamic-imports).
import { createRequire } from "node:module";
import type { TopLevelSpec } from "vega-lite";
import { writeAtomic } from "../io/atomic.ts";

export const FONT = "DejaVu Sans";

/** Text for SVG and HTML markup. */
export const escapeXml = (s: unknown) =>
  String(s).replace(
    /[<>&"]/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!,
  );

/** The font for PNGs: the copy beside the sources, else the system's (bundles have no assets). */
const FONT_FILES = [
  new URL("../assets/fonts/DejaVuSans.ttf", import.meta.url),
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
];

type ResvgModule = typeof import("@resvg/resvg-wasm");
let ready: Promise<{ resvg: ResvgModule; font: Uint8Array }> | null = null;

/** Loads resvg, its WebAssembly and the font once per process. */
function rasteriser(): Promise<{ resvg: ResvgModule; font: Uint8Array }> {
  ready ??= (async () => {
    const resvg = await import("@resvg/resvg-wasm");
    const require = createRequire(import.meta.url);
    await resvg.initWasm(await Deno.readFile(require.resolve("@resvg/resvg-wasm/index_bg.wasm")));
    for (const f of FONT_FILES) {
      try {
        return { resvg, font: await Deno.readFile(f) };
      } catch { /* the next one */ }
    }
    throw new Error(`no font for PNG text: none of ${FONT_FILES.join(", ")} is readable`);
  })();
  return ready;
}

/** A Vega-Lite specification drawn as SVG. */
export async function svgOf(spec: TopLevelSpec): Promise<string> {
  const withFont = {
    ...spec,
    config: { font: FONT, background: "white", ...(spec.config ?? {}) },
  } as TopLevelSpec;
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const view = new vega.View(vega.parse(compile(withFont).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** An SVG rasterised at `scale` (2: crisp on high-density screens). */
export async function pngOf(svg: string, scale = 2): Promise<Uint8Array> {
  const { resvg, font } = await rasteriser();
  const r = new resvg.Resvg(svg, {
    font: { fontBuffers: [font], defaultFontFamily: FONT, loadSystemFonts: false },
    fitTo: { mode: "zoom", value: scale },
  });
  try {
    const img = r.render();
    try {
      return img.asPng();
    } finally {
      img.free();
    }
  } finally {
    r.free();
  }
}

/** Writes `base`.svg and `base`.png; returns both paths. */
export async function writeChart(
  base: string,
  spec: TopLevelSpec,
): Promise<{ svg: string; png: string }> {
  return writeSvg(base, await svgOf(spec), 2);
}

/** Writes an SVG (a chart's, or one drawn by hand: the contact sheet) and its PNG, each
 * whole or not at all (a temporary file, then a rename). */
export async function writeSvg(
  base: string,
  svg: string,
  scale = 1,
): Promise<{ svg: string; png: string }> {
  const png = await pngOf(svg, scale);
  await writeAtomic(`${base}.svg`, svg);
  await writeAtomic(`${base}.png`, png);
  return { svg: `${base}.svg`, png: `${base}.png` };
}
