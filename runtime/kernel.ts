// Shaders as data: a kernel builder returns a KernelSpec; Runtime.run() is the one submit
// path for all of them (pipeline cache, bind-group cache, one compute pass per step).
import type { Tensor } from "./tensor.ts";

export interface KernelSpec {
  /** The op, for labels and error messages (e.g. "matmul"). */
  readonly name: string;
  /** Complete WGSL; shapes are baked in as constants, so the code is the cache key. */
  readonly code: string;
  /** Workgroup counts (x, y, z). */
  readonly grid: readonly [number, number, number];
  /** Tensors bound at @group(0) @binding(0..n-1), in this order. */
  readonly bindings: readonly Tensor[];
}

/** Workgroup grid for `n` invocations of a 1-D kernel, folded into y past the 65535 limit. */
export function grid1d(
  n: number,
  workgroup: number,
  maxPerDim = 65535,
): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / workgroup));
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}

/** WGSL expression for the flat invocation index of a grid from grid1d(). */
export function flatIndex(grid: readonly [number, number, number], workgroup: number): string {
  return grid[1] === 1 ? "gid.x" : `(gid.x + gid.y * ${grid[0] * workgroup}u)`;
}
