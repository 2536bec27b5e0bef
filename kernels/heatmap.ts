// PoseConv3D heatmap volumes rendered on the GPU, straight into the model's input buffer:
// out (N, C, T, S, S) from keypoints (N, M, T, V, 2) and scores (N, M, T, V). Channels are
// the joints (Gaussian around each joint) and/or the limbs (Gaussian of the distance to the
// segment, times the smaller endpoint score); persons merge by max. Exactly pyskl's
// windows: a joint touches pixels trunc(mu - 3 sigma) .. trunc(mu + 3 sigma) inclusive,
// clipped to the image; scores below 1e-3 are skipped. One invocation renders one row of
// one frame of one channel, four pixels at a time. The plain TypeScript version the tests
// compare it against: heatmap_reference.ts.
import { flatIndex, grid1d, type KernelSpec } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { JointLayout } from "../data/layouts.ts";
import { binding, f32lit, requireContiguous, ShapeError } from "./wgsl.ts";

const WG = 64;

export interface HeatmapKernelSpec {
  size: number;
  sigma: number;
  joints: boolean;
  /** Limb joint pairs (empty for joint-only heatmaps). */
  limbs: readonly (readonly [number, number])[];
  /**
   * Each person in its own channels (N, M*C, T, S, S), channel m*C + c, instead of merged by
   * max: the persons are rendered as rows of their own, which is the same memory.
   */
  splitPersons?: boolean;
}

/** A layout's heatmap volume: size x size, its joints' and/or its limbs' channels. */
export interface HeatmapSpec {
  /** Heatmap size (square), e.g. 56. */
  size: number;
  sigma: number;
  joints: boolean;
  limbs: boolean;
}

/** Channels of a heatmap volume for a layout. */
export function heatmapChannels(layout: JointLayout, spec: HeatmapSpec): number {
  return (spec.joints ? layout.joints.length : 0) + (spec.limbs ? layout.limbs.length : 0);
}

export function renderHeatmaps(
  rt: Runtime,
  xy: Tensor,
  score: Tensor,
  spec: HeatmapKernelSpec,
  out?: Tensor,
): Tensor {
  requireContiguous("heatmap", xy);
  requireContiguous("heatmap", score);
  if (spec.splitPersons && xy.rank === 5 && score.rank === 4) {
    const [n, m, t, v] = xy.shape;
    const o = out?.view([n * m, out.size / (n * m * t * spec.size ** 2), t, spec.size, spec.size]);
    const r = renderHeatmaps(
      rt,
      xy.view([n * m, 1, t, v, 2]),
      score.view([n * m, 1, t, v]),
      { ...spec, splitPersons: false },
      o,
    );
    return r.view([n, m * r.shape[1], t, spec.size, spec.size]);
  }
  if (xy.rank !== 5 || xy.shape[4] !== 2 || score.rank !== 4) {
    throw new ShapeError(
      "heatmap",
      "needs keypoints (N, M, T, V, 2) and scores (N, M, T, V)",
      xy,
      score,
    );
  }
  const [n, m, t, v] = xy.shape;
  if (score.shape.some((d, i) => d !== xy.shape[i])) {
    throw new ShapeError("heatmap", "scores do not match keypoints", xy, score);
  }
  const S = spec.size, sg = spec.sigma;
  const C = (spec.joints ? v : 0) + spec.limbs.length;
  if (C === 0) throw new ShapeError("heatmap", "no channels: enable joints or limbs");
  for (const [a, b] of spec.limbs) {
    if (a >= v || b >= v) {
      throw new ShapeError("heatmap", `limb (${a}, ${b}) outside ${v} joints`);
    }
  }
  const o = out ?? rt.empty([n, C, t, S, S], "f32", "heatmap");
  if (o.size !== n * C * t * S * S || !o.isContiguous || o.dtype === "i32") {
    throw new ShapeError("heatmap", `output must be contiguous (${n}, ${C}, ${t}, ${S}, ${S})`, o);
  }
  if (o.dtype === "f32") {
    rt.clear(o);
    rt.run(windowKernel(xy, score, o, spec, { n, m, t, v, C }));
    return o;
  }
  const vec = S % 4 === 0 && o.bindOffset % 4 === 0;
  const G = vec ? S / 4 : S; // pixel groups per row
  const rows = n * C * t * S;
  const grid = grid1d(rows, WG);
  const inv2s2 = f32lit(1 / (2 * sg * sg));
  const limbTable = spec.limbs.length
    ? `const LIMBS = array<vec2<u32>, ${spec.limbs.length}>(${
      spec.limbs.map(([a, b]) => `vec2<u32>(${a}u, ${b}u)`).join(", ")
    });`
    : "";
  const T_ = o.dtype === "f16" ? "f16" : "f32";
  const store = vec
    ? `Out[(${o.bindOffset}u + rowBase) / 4u + g] = vec4<${T_}>(val);`
    : `Out[${o.bindOffset}u + rowBase + g] = ${T_}(val.x);`;
  const code = `${
    o.dtype === "f16" ? "enable f16;\n" : ""
  }// heatmap N=${n} M=${m} T=${t} V=${v} C=${C} S=${S} sigma=${sg}
${binding(0, "XY", xy, "read")}
${binding(1, "Score", score, "read")}
${binding(2, "Out", o, "read_write", vec)}
${limbTable}
fn win(mu: f32) -> vec2<i32> {
  return vec2<i32>(max(i32(mu - ${f32lit(3 * sg)}), 0), min(i32(mu + ${f32lit(3 * sg)}) + 1, ${S}));
}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = ${flatIndex(grid, WG)};
  if (row >= ${rows}u) { return; }
  let y = row % ${S}u;
  let tt = (row / ${S}u) % ${t}u;
  let c = (row / ${S * t}u) % ${C}u;
  let nn = row / ${S * t * C}u;
  let yi = i32(y);
  let yf = f32(y);
  let rowBase = row * ${S}u;
  // Per person: x window, and the row's factor (joints) or the segment (limbs).
  var x0: array<i32, ${m}>;
  var x1: array<i32, ${m}>;
  var coef: array<f32, ${m}>;
  var pa: array<vec2<f32>, ${m}>;
  var pb: array<vec2<f32>, ${m}>;
  for (var p = 0u; p < ${m}u; p++) {
    x0[p] = 0; x1[p] = 0; coef[p] = 0.0;
    let base = ((nn * ${m}u + p) * ${t}u + tt) * ${v}u;
    if (${spec.joints ? `c < ${v}u` : "false"}) {
      let s = Score[${score.bindOffset}u + base + c];
      let mu = vec2<f32>(XY[${xy.bindOffset}u + (base + c) * 2u], XY[${xy.bindOffset}u + (base + c) * 2u + 1u]);
      let wy = win(mu.y);
      if (s >= 1e-3 && yi >= wy.x && yi < wy.y) {
        let wx = win(mu.x);
        x0[p] = wx.x; x1[p] = wx.y;
        coef[p] = exp(-(yf - mu.y) * (yf - mu.y) * ${inv2s2}) * s;
        pa[p] = mu;
      }
    } else {
      ${
    spec.limbs.length
      ? `let l = LIMBS[c - ${spec.joints ? v : 0}u];
      let sa = Score[${score.bindOffset}u + base + l.x];
      let sb = Score[${score.bindOffset}u + base + l.y];
      let a = vec2<f32>(XY[${xy.bindOffset}u + (base + l.x) * 2u], XY[${xy.bindOffset}u + (base + l.x) * 2u + 1u]);
      let b = vec2<f32>(XY[${xy.bindOffset}u + (base + l.y) * 2u], XY[${xy.bindOffset}u + (base + l.y) * 2u + 1u]);
      let y0 = max(i32(min(a.y, b.y) - ${f32lit(3 * sg)}), 0);
      let y1 = min(i32(max(a.y, b.y) + ${f32lit(3 * sg)}) + 1, ${S});
      if (sa >= 1e-3 && sb >= 1e-3 && yi >= y0 && yi < y1) {
        x0[p] = max(i32(min(a.x, b.x) - ${f32lit(3 * sg)}), 0);
        x1[p] = min(i32(max(a.x, b.x) + ${f32lit(3 * sg)}) + 1, ${S});
        coef[p] = min(sa, sb);
        pa[p] = a;
        pb[p] = b;
      }`
      : ""
  }
    }
  }
  let isJoint = ${spec.joints ? `c < ${v}u` : "false"};
  for (var g = 0u; g < ${G}u; g++) {
    var val = vec4<f32>(0.0);
    for (var p = 0u; p < ${m}u; p++) {
      if (coef[p] == 0.0) { continue; }
      for (var e = 0u; e < ${vec ? 4 : 1}u; e++) {
        let xi = i32(g * ${vec ? 4 : 1}u + e);
        if (xi < x0[p] || xi >= x1[p]) { continue; }
        let xf = f32(xi);
        var h: f32;
        if (isJoint) {
          let dx = xf - pa[p].x;
          h = exp(-dx * dx * ${inv2s2}) * coef[p];
        } else {
          let d = pb[p] - pa[p];
          let len2 = dot(d, d);
          let q = vec2<f32>(xf, yf) - pa[p];
          var r = q;
          if (len2 >= 1e-12) { r = q - clamp(dot(q, d) / len2, 0.0, 1.0) * d; }
          h = exp(-dot(r, r) * ${inv2s2}) * coef[p];
        }
        val[e] = max(val[e], h);
      }
    }
    ${store}
  }
}
`;
  rt.run({ name: "heatmap", code, grid, bindings: [xy, score, o] });
  return o;
}

/**
 * f32 output: one invocation per (sample, frame, channel) plane draws only the 3-sigma
 * windows of that plane's joint or limb, person after person, merging by max. No two
 * invocations share a plane, so plain loads and stores suffice (no atomics), and the same
 * invocation may first zero the windows that the previous batch's keypoints (`prev`) drew
 * in its plane: erase and draw in one dispatch. A joint's window is at most W = floor(6
 * sigma) + 2 pixels wide, so its loops have a constant trip count (no divergence), and a
 * joint plane's pixels are stored, never read back: each is the max over persons computed
 * in place. Limb planes merge by max with a load.
 */
function windowKernel(
  xy: Tensor,
  score: Tensor,
  o: Tensor,
  spec: HeatmapKernelSpec,
  d: { n: number; m: number; t: number; v: number; C: number },
  prev?: { xy: Tensor; score: Tensor },
): KernelSpec {
  const { n, m, t, v, C } = d;
  const S = spec.size, sg = spec.sigma;
  const W = Math.floor(6 * sg) + 2;
  const items = n * t * C;
  const grid = grid1d(items, WG);
  const inv2s2 = f32lit(1 / (2 * sg * sg));
  const r3 = f32lit(3 * sg);
  const J = spec.joints ? v : 0;
  const limbTable = spec.limbs.length
    ? `const LIMBS = array<vec2<u32>, ${spec.limbs.length}>(${
      spec.limbs.map(([a, b]) => `vec2<u32>(${a}u, ${b}u)`).join(", ")
    });`
    : "";
  // One pass over the persons of a plane: `draw` merges Gaussians by max, else it zeroes
  // exactly the pixels a draw of the same keypoints touched.
  const pass = (P: string, draw: boolean) => {
    const pt = (j: string) =>
      `vec2<f32>(${P}XY[${xy.bindOffset}u + (base + ${j}) * 2u], ${P}XY[${xy.bindOffset}u + (base + ${j}) * 2u + 1u])`;
    const put = (k: string, h: string) =>
      draw ? `Out[${k}] = max(Out[${k}], ${h});` : `Out[${k}] = 0.0;`;
    // Joint planes. Erase zeroes each person's window. Draw evaluates every person's
    // Gaussian at each pixel of each window and stores the max: no read of the volume.
    const joint = draw
      ? `var jmu: array<vec2<f32>, ${m}>;
      var js: array<f32, ${m}>;
      var jw: array<vec4<i32>, ${m}>;
      for (var q = 0u; q < ${m}u; q++) {
        let base = ((nn * ${m}u + q) * ${t}u + tt) * ${v}u;
        let mu = ${pt("c")};
        let s = ${P}Score[${score.bindOffset}u + base + c];
        jmu[q] = mu;
        js[q] = s;
        jw[q] = select(vec4<i32>(0), vec4<i32>(max(i32(mu.x - ${r3}), 0), min(i32(mu.x + ${r3}) + 1, ${S}),
          max(i32(mu.y - ${r3}), 0), min(i32(mu.y + ${r3}) + 1, ${S})), s >= 1e-3);
      }
      for (var p = 0u; p < ${m}u; p++) {
        let w = jw[p];
        let mu = jmu[p];
        let s = js[p];
        // Other persons matter only where windows meet, which is rare: one test per window
        // instead of one per pixel (5% of the kernel on llvmpipe).
        var meets = false;
        for (var q = 0u; q < ${m}u; q++) {
          let wq = jw[q];
          meets = meets || (q != p && wq.x < w.y && w.x < wq.y && wq.z < w.w && w.z < wq.w);
        }
        for (var j = 0; j < ${W}; j++) {
          let y = w.z + j;
          if (y >= w.w) { break; }
          let row = plane + u32(y) * ${S}u;
          let dy = f32(y) - mu.y;
          for (var i = 0; i < ${W}; i++) {
            let x = w.x + i;
            if (x >= w.y) { break; }
            let dx = f32(x) - mu.x;
            var h = exp(-(dx * dx + dy * dy) * ${inv2s2}) * s;
            if (meets) {
              for (var q = 0u; q < ${m}u; q++) {
                let wq = jw[q];
                if (q != p && x >= wq.x && x < wq.y && y >= wq.z && y < wq.w) {
                  let d = vec2<f32>(f32(x), f32(y)) - jmu[q];
                  h = max(h, exp(-dot(d, d) * ${inv2s2}) * js[q]);
                }
              }
            }
            Out[row + u32(x)] = h;
          }
        }
      }`
      : `for (var p = 0u; p < ${m}u; p++) {
        let base = ((nn * ${m}u + p) * ${t}u + tt) * ${v}u;
        let s = ${P}Score[${score.bindOffset}u + base + c];
        if (s < 1e-3) { continue; }
        let mu = ${pt("c")};
        let x0 = max(i32(mu.x - ${r3}), 0);
        let x1 = min(i32(mu.x + ${r3}) + 1, ${S});
        let y0 = max(i32(mu.y - ${r3}), 0);
        let y1 = min(i32(mu.y + ${r3}) + 1, ${S});
        for (var j = 0; j < ${W}; j++) {
          let y = y0 + j;
          if (y >= y1) { break; }
          let row = plane + u32(y) * ${S}u + u32(x0);
          for (var i = 0; i < ${W}; i++) {
            if (x0 + i >= x1) { break; }
            Out[row + u32(i)] = 0.0;
          }
        }
      }`;
    return `if (c < ${J}u) {
      ${joint}
    } else {
    for (var p = 0u; p < ${m}u; p++) {
    let base = ((nn * ${m}u + p) * ${t}u + tt) * ${v}u;
    ${
      spec.limbs.length
        ? `let l = LIMBS[c - ${J}u];
    let sa = ${P}Score[${score.bindOffset}u + base + l.x];
    let sb = ${P}Score[${score.bindOffset}u + base + l.y];
    if (sa < 1e-3 || sb < 1e-3) { continue; }
    let a = ${pt("l.x")};
    let b = ${pt("l.y")};
    let coef = min(sa, sb);
    let x0 = max(i32(min(a.x, b.x) - ${r3}), 0);
    let x1 = min(i32(max(a.x, b.x) + ${r3}) + 1, ${S});
    let y0 = max(i32(min(a.y, b.y) - ${r3}), 0);
    let y1 = min(i32(max(a.y, b.y) + ${r3}) + 1, ${S});
    let dd = b - a;
    let len2 = dot(dd, dd);
    for (var y = y0; y < y1; y++) {
      for (var x = x0; x < x1; x++) {
        let k = plane + u32(y) * ${S}u + u32(x);
        ${
          draw
            ? `let q = vec2<f32>(f32(x), f32(y)) - a;
        var r = q;
        if (len2 >= 1e-12) { r = q - clamp(dot(q, dd) / len2, 0.0, 1.0) * dd; }`
            : ""
        }
        ${put("k", "exp(-dot(r, r) * " + inv2s2 + ") * coef")}
      }
    }`
        : ""
    }
  }
  }`;
  };
  const code =
    `// heatmap (windows) N=${n} M=${m} T=${t} V=${v} C=${C} S=${S} sigma=${sg} erase=${!!prev}
${binding(0, "XY", xy, "read")}
${binding(1, "Score", score, "read")}
${binding(2, "Out", o, "read_write")}
${prev ? binding(3, "PXY", prev.xy, "read") + "\n" + binding(4, "PScore", prev.score, "read") : ""}
${limbTable}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${flatIndex(grid, WG)};
  if (i >= ${items}u) { return; }
  let tt = i % ${t}u;
  let c = (i / ${t}u) % ${C}u;
  let nn = i / ${C * t}u;
  let plane = ${o.bindOffset}u + ((nn * ${C}u + c) * ${t}u + tt) * ${S * S}u;
  ${prev ? pass("P", false) : ""}
  ${pass("", true)}
}
`;
  return {
    name: prev ? "heatmap.redraw" : "heatmap",
    code,
    grid,
    bindings: prev ? [xy, score, o, prev.xy, prev.score] : [xy, score, o],
  };
}

/**
 * A persistent input buffer for the model plus double-buffered keypoints: each batch first
 * erases the previous batch's windows (only the pixels it drew), then draws its own, in one
 * dispatch. No full-volume clear after the first batch: a 17 x 48 x 56 x 56 volume is 10 MB
 * of which about 3% is non-zero. Keypoints and scores travel in one upload.
 */
export class HeatmapRenderer {
  #out: Tensor | null = null;
  #slots: { kp: Tensor; xy: Tensor; score: Tensor }[] = [];
  #upload = new Float32Array(0);
  #k = 0;
  #dirty = false;

  constructor(readonly rt: Runtime, readonly spec: HeatmapKernelSpec) {}

  /** Renders host keypoints (N, M, T, V, 2) and scores (N, M, T, V); returns the volume. */
  render(
    xy: Float32Array,
    score: Float32Array,
    shape: readonly [number, number, number, number],
  ): Tensor {
    if (this.spec.splitPersons) {
      const [n, m, t, v] = shape;
      const r = this.#render(xy, score, [n * m, 1, t, v]);
      return r.view([n, m * r.shape[1], t, r.shape[3], r.shape[4]]);
    }
    return this.#render(xy, score, shape);
  }

  #render(
    xy: Float32Array,
    score: Float32Array,
    shape: readonly [number, number, number, number],
  ): Tensor {
    const rt = this.rt;
    const [n, m, t, v] = shape;
    const C = (this.spec.joints ? v : 0) + this.spec.limbs.length;
    const S = this.spec.size;
    if (!this.#out || this.#slots[0].xy.shape.join() !== [n, m, t, v, 2].join()) {
      this.dispose();
      this.#out = rt.persistent([n, C, t, S, S], "f32", "heatmap.input");
      const nxy = n * m * t * v * 2, ns = n * m * t * v;
      this.#upload = new Float32Array(nxy + ns);
      this.#slots = [0, 1].map(() => {
        const kp = rt.persistent([nxy + ns], "f32", "heatmap.keypoints");
        return {
          kp,
          xy: kp.slice0(0, nxy).view([n, m, t, v, 2]),
          score: kp.slice0(nxy, nxy + ns).view([n, m, t, v]),
        };
      });
      rt.clear(this.#out);
      this.#dirty = false;
    }
    const cur = this.#slots[this.#k % 2], prev = this.#slots[(this.#k + 1) % 2];
    if (xy.length !== cur.xy.size || score.length !== cur.score.size) {
      throw new ShapeError(
        "heatmap",
        `${xy.length} coordinates and ${score.length} scores for ${shape}`,
      );
    }
    this.#upload.set(xy);
    this.#upload.set(score, xy.length);
    rt.write(cur.kp, this.#upload);
    const d = { n, m, t, v, C };
    rt.run(
      windowKernel(cur.xy, cur.score, this.#out, this.spec, d, this.#dirty ? prev : undefined),
    );
    this.#dirty = true;
    this.#k++;
    return this.#out;
  }

  dispose(): void {
    if (this.#out) this.rt.dispose(this.#out);
    for (const s of this.#slots) this.rt.dispose(s.kp);
    this.#out = null;
    this.#slots = [];
  }
}
