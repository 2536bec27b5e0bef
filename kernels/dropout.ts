// Dropout with a seeded counter-based RNG: keep[i] = hash(seed, salt, i) >= p. Nothing is
// stored: the backward recomputes the same mask from the same (seed, salt).
import { flatIndex, grid1d } from "../runtime/kernel.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { binding, f32lit, header, requireContiguous, requireDtype } from "./wgsl.ts";

const WG = 64;

/** PCG-style integer hash (Jarzynski & Olano 2020): counter in, 32 random bits out. */
export const HASH_WGSL = `
fn pcg_(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
`;

/** y = x * keep / (1 - p); seed is an i32 tensor [1] written by the trainer each step. */
export function dropout(
  rt: Runtime,
  x: Tensor,
  p: number,
  seed: Tensor,
  salt: number,
): Tensor {
  requireContiguous("dropout", x);
  requireDtype("dropout", seed, ["i32"]);
  const y = rt.empty(x.shape, x.dtype, "dropout");
  const n = x.size;
  const grid = grid1d(n, WG);
  const threshold = Math.min(0xffffffff, Math.floor(p * 4294967296));
  const code = `${header(x.dtype)}// dropout p=${p} salt=${salt} n=${n}
${binding(0, "X", x, "read")}
${binding(1, "Seed", seed, "read")}
${binding(2, "Y", y, "read_write")}
${HASH_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = ${flatIndex(grid, WG)};
  if (i >= ${n}u) { return; }
  let key = pcg_(bitcast<u32>(Seed[${seed.bindOffset}u]) ^ pcg_(${salt >>> 0}u));
  let r = pcg_(i ^ key) ^ pcg_(key + i * 2654435761u);
  let keep = r >= ${threshold >>> 0}u;
  Y[i] = ${y.dtype}(select(0.0, f32(X[${x.bindOffset}u + i]) * ${f32lit(1 / (1 - p))}, keep));
}
`;
  rt.run({ name: "dropout", code, grid, bindings: [x, seed, y] });
  return y;
}
