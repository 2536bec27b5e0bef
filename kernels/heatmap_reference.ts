// The plain TypeScript heatmap renderer that kernels/heatmap.ts is tested and benchmarked
// against: pyskl's generate_a_heatmap / generate_a_limb_heatmap, one clip at a time.
import type { Clip2D } from "../data/clip.ts";
import type { JointLayout } from "../data/layouts.ts";
import { heatmapChannels, type HeatmapSpec } from "./heatmap.ts";

const EPS = 1e-3;

/**
 * The reference renderer (tests and benchmarks only): C x T x H x W for one clip, exactly
 * pyskl's generate_a_heatmap / generate_a_limb_heatmap, persons merged by max. Into `into`
 * (zeroed first) when given, else into a new array.
 */
export function heatmapReference(
  c: Clip2D,
  layout: JointLayout,
  spec: HeatmapSpec,
  into?: Float32Array,
): Float32Array {
  const S = spec.size, T = c.frames, V = c.joints, sg = spec.sigma;
  const C = heatmapChannels(layout, spec);
  if (into && into.length !== C * T * S * S) {
    throw new RangeError(`heatmapReference: ${into.length} elements for ${C} x ${T} x ${S} x ${S}`);
  }
  const out = into ? into.fill(0) : new Float32Array(C * T * S * S);
  const win = (
    mu: number,
  ) => [Math.max(Math.trunc(mu - 3 * sg), 0), Math.min(Math.trunc(mu + 3 * sg) + 1, S)];
  for (let m = 0; m < c.persons; m++) {
    for (let t = 0; t < T; t++) {
      const base = (m * T + t) * V;
      if (spec.joints) {
        for (let j = 0; j < V; j++) {
          const s = c.score[base + j];
          if (s < EPS) continue;
          const mx = c.xy[(base + j) * 2], my = c.xy[(base + j) * 2 + 1];
          const [x0, x1] = win(mx), [y0, y1] = win(my);
          for (let y = y0; y < y1; y++) {
            for (let x = x0; x < x1; x++) {
              const v = Math.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * sg * sg)) * s;
              const o = ((j * T + t) * S + y) * S + x;
              if (v > out[o]) out[o] = v;
            }
          }
        }
      }
      if (spec.limbs) {
        const off = spec.joints ? V : 0;
        layout.limbs.forEach(([a, b], l) => {
          const sa = c.score[base + a], sb = c.score[base + b];
          if (sa < EPS || sb < EPS) return;
          const ax = c.xy[(base + a) * 2], ay = c.xy[(base + a) * 2 + 1];
          const bx = c.xy[(base + b) * 2], by = c.xy[(base + b) * 2 + 1];
          const coef = Math.min(sa, sb);
          const x0 = Math.max(Math.trunc(Math.min(ax, bx) - 3 * sg), 0),
            x1 = Math.min(Math.trunc(Math.max(ax, bx) + 3 * sg) + 1, S);
          const y0 = Math.max(Math.trunc(Math.min(ay, by) - 3 * sg), 0),
            y1 = Math.min(Math.trunc(Math.max(ay, by) + 3 * sg) + 1, S);
          const dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
          for (let y = y0; y < y1; y++) {
            for (let x = x0; x < x1; x++) {
              let d2: number;
              if (len2 < 1e-12) d2 = (x - ax) ** 2 + (y - ay) ** 2;
              else {
                const u = Math.min(1, Math.max(0, ((x - ax) * dx + (y - ay) * dy) / len2));
                d2 = (x - ax - u * dx) ** 2 + (y - ay - u * dy) ** 2;
              }
              const v = Math.exp(-d2 / (2 * sg * sg)) * coef;
              const o = (((off + l) * T + t) * S + y) * S + x;
              if (v > out[o]) out[o] = v;
            }
          }
        });
      }
    }
  }
  return out;
}
