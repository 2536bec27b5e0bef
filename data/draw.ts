// Drawing on RGB rasters (height x width x 3 bytes): thick lines, dots, digits of a 3 x 5 pixel
// font, boxes, a colour per track id, and an area-averaging shrink. What `render --video` draws
// skeletons and labels with.

/** An RGB raster, row-major, 3 bytes a pixel. */
export interface Raster {
  width: number;
  height: number;
  rgb: Uint8Array;
}

export type Rgb = readonly [number, number, number];

/** Ten colours told apart easily (matplotlib's tab10), one per track id, cycling. */
const PALETTE: Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];
export const trackColour = (id: number): Rgb => PALETTE[id % PALETTE.length];

/** A filled square of side `size` centred on (x, y), clipped to the raster. */
export function dot(r: Raster, x: number, y: number, size: number, c: Rgb): void {
  fill(r, x - size / 2, y - size / 2, x + size / 2, y + size / 2, c);
}

/** The box [x1, x2) x [y1, y2), clipped to the raster, filled with `c`. */
export function fill(r: Raster, x1: number, y1: number, x2: number, y2: number, c: Rgb): void {
  const xa = Math.max(0, Math.round(x1)), xb = Math.min(r.width, Math.round(x2));
  const ya = Math.max(0, Math.round(y1)), yb = Math.min(r.height, Math.round(y2));
  for (let y = ya; y < yb; y++) {
    for (let x = xa; x < xb; x++) r.rgb.set(c, (y * r.width + x) * 3);
  }
}

/** A line `width` pixels thick from (x0, y0) to (x1, y1). */
export function line(
  r: Raster,
  [x0, y0]: readonly [number, number],
  [x1, y1]: readonly [number, number],
  width: number,
  c: Rgb,
): void {
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
  for (let s = 0; s <= steps; s++) {
    dot(r, x0 + ((x1 - x0) * s) / steps, y0 + ((y1 - y0) * s) / steps, width, c);
  }
}

// 3 x 5 glyphs, a row of 3 bits each, top row first
const GLYPHS: Record<string, number[]> = {
  "0": [7, 5, 5, 5, 7],
  "1": [2, 6, 2, 2, 7],
  "2": [7, 1, 7, 4, 7],
  "3": [7, 1, 7, 1, 7],
  "4": [5, 5, 7, 1, 1],
  "5": [7, 4, 7, 1, 7],
  "6": [7, 4, 7, 5, 7],
  "7": [7, 1, 1, 1, 1],
  "8": [7, 5, 7, 5, 7],
  "9": [7, 5, 7, 1, 7],
  ".": [0, 0, 0, 0, 2],
};

/** The size of `text` written at `scale` pixels a font pixel, with a one-pixel margin. */
export const textSize = (text: string, scale: number) => ({
  width: (text.length * 4 + 1) * scale,
  height: 7 * scale,
});

/**
 * `text` (digits and '.') in colour `c` on a dark box, its top left corner at (x, y), `scale`
 * pixels a font pixel.
 */
export function label(r: Raster, x: number, y: number, text: string, scale: number, c: Rgb) {
  const { width, height } = textSize(text, scale);
  fill(r, x, y, x + width, y + height, [0, 0, 0]);
  [...text].forEach((ch, i) => {
    (GLYPHS[ch] ?? []).forEach((bits, row) => {
      for (let col = 0; col < 3; col++) {
        if (!(bits & (4 >> col))) continue;
        const px = x + (1 + i * 4 + col) * scale, py = y + (1 + row) * scale;
        fill(r, px, py, px + scale, py + scale, c);
      }
    });
  });
}

/** The raster shrunk to `width` pixels across (height in proportion), each pixel an area mean. */
export function shrink(r: Raster, width: number): Raster {
  const s = r.width / width, height = Math.max(1, Math.round(r.height / s));
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const ya = Math.floor(y * s),
      yb = Math.max(ya + 1, Math.min(r.height, Math.floor((y + 1) * s)));
    for (let x = 0; x < width; x++) {
      const xa = Math.floor(x * s),
        xb = Math.max(xa + 1, Math.min(r.width, Math.floor((x + 1) * s)));
      const sum = [0, 0, 0];
      for (let v = ya; v < yb; v++) {
        for (let u = xa; u < xb; u++) {
          const i = (v * r.width + u) * 3;
          sum[0] += r.rgb[i], sum[1] += r.rgb[i + 1], sum[2] += r.rgb[i + 2];
        }
      }
      const n = (yb - ya) * (xb - xa), o = (y * width + x) * 3;
      out[o] = sum[0] / n, out[o + 1] = sum[1] / n, out[o + 2] = sum[2] / n;
    }
  }
  return { width, height, rgb: out };
}

/** Copies `tile` into `r` with its top left corner at (x, y). */
export function paste(r: Raster, tile: Raster, x: number, y: number): void {
  for (let row = 0; row < tile.height; row++) {
    const from = row * tile.width * 3;
    r.rgb.set(tile.rgb.subarray(from, from + tile.width * 3), ((y + row) * r.width + x) * 3);
  }
}
