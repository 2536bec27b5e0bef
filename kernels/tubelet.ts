// Tubelet embedding = 3D convolution with kernel = stride over (N, C, T, H, W).
// Because tubes do not overlap, the convolution is a permutation (patchify) followed by one
// matmul with the flattened kernel; its input gradient is the inverse permutation of
// dTokens @ W. Per-frame patches are tubelets with kt = 1.
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { map } from "./map.ts";
import { ShapeError } from "./wgsl.ts";

export type Tubelet = readonly [number, number, number];

export function tubeletGrid(shape: readonly number[], k: Tubelet): number[] {
  const [, , t, h, w] = shape;
  if (shape.length !== 5 || t % k[0] || h % k[1] || w % k[2]) {
    throw new ShapeError(
      "tubelet",
      `input (N, C, T, H, W) must divide by the tubelet ${k.join("x")}`,
      shape,
    );
  }
  return [t / k[0], h / k[1], w / k[2]];
}

/** (N, C, T, H, W) -> (N, nT*nH*nW, C*kt*kh*kw), tokens in (t, h, w) order. */
export function patchify(rt: Runtime, x: Tensor, k: Tubelet): Tensor {
  const [n, c] = x.shape;
  const [nt, nh, nw] = tubeletGrid(x.shape, k);
  if (!x.isContiguous) throw new ShapeError("patchify", "needs a contiguous input", x);
  const v = x.view([n, c, nt, k[0], nh, k[1], nw, k[2]]);
  const p = v.permuteView([0, 2, 4, 6, 1, 3, 5, 7]);
  const out = rt.empty([n, nt, nh, nw, c, k[0], k[1], k[2]], x.dtype, "patchify");
  map(rt, [p], "v0", { out, name: "patchify" });
  return out.view([n, nt * nh * nw, c * k[0] * k[1] * k[2]]);
}

/** Inverse of patchify: (N, tokens, C*kt*kh*kw) -> (N, C, T, H, W). */
export function unpatchify(rt: Runtime, p: Tensor, xShape: readonly number[], k: Tubelet): Tensor {
  const [n, c] = xShape;
  const [nt, nh, nw] = tubeletGrid(xShape, k);
  const v = p.view([n, nt, nh, nw, c, k[0], k[1], k[2]]);
  const out = rt.empty(xShape, p.dtype, "unpatchify");
  const o8 = out.view([n, c, nt, k[0], nh, k[1], nw, k[2]]).permuteView([0, 2, 4, 6, 1, 3, 5, 7]);
  map(rt, [v], "v0", { out: o8, name: "unpatchify" });
  return out;
}
