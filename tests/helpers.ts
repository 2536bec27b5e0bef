// Test helpers: one shared runtime, fixture access, and a tolerance matcher that reports
// the worst element (value, expected, index) so a failure says what is wrong.
import { asFloat32, readSafetensors, type SafeTensors } from "../io/safetensors.ts";
import { Runtime } from "../runtime/runtime.ts";
import type { Tensor } from "../runtime/tensor.ts";

let shared: Promise<Runtime> | null = null;

export function runtime(): Promise<Runtime> {
  shared ??= Runtime.create();
  return shared;
}

/** Adapter features some tests need. */
export type GpuNeed = "shader-f16" | "8-lane subgroups";

/**
 * Why the shared runtime's adapter cannot run a test that needs `need` (null: it can). Await
 * it at a test file's top level, before registering, and pass it as gpuTest's `skip`.
 */
export async function lacks(need: GpuNeed): Promise<string | null> {
  const { gpu } = await runtime();
  const has = need === "shader-f16" ? gpu.f16 : gpu.subgroups && gpu.subgroupSize === 8;
  return has ? null : `the adapter (${gpu.description.name}) has no ${need}`;
}

/**
 * Deno.test for GPU code: WebGPU handles outlive a single test, so sanitizers are off. With a
 * `skip` reason the test is registered as ignored (deno test counts it so) and says why.
 */
export function gpuTest(
  name: string,
  fn: (rt: Runtime) => Promise<void>,
  o: { skip?: string | null } = {},
): void {
  if (o.skip) console.log(`skipping "${name}": ${o.skip}`);
  Deno.test({
    name,
    ignore: !!o.skip,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const rt = await runtime();
      await fn(rt);
    },
  });
}

let fixtures: Promise<SafeTensors> | null = null;

export function opsFixtures(): Promise<SafeTensors> {
  fixtures ??= readSafetensors(new URL("./fixtures/ops.safetensors", import.meta.url).pathname);
  return fixtures;
}

export interface Fixture {
  params: Record<string, unknown>;
  has(name: string): boolean;
  data(name: string): Float32Array;
  shape(name: string): number[];
  /** Uploads a fixture tensor; requiresGrad marks it as a leaf. */
  tensor(rt: Runtime, name: string, requiresGrad?: boolean): Tensor;
}

export async function fixture(name: string): Promise<Fixture> {
  const st = await opsFixtures();
  const get = (t: string) => {
    const v = st.tensors.get(`${name}.${t}`);
    if (!v) throw new Error(`fixture ${name}.${t} missing: rerun tests/fixtures/make_fixtures.py`);
    return v;
  };
  return {
    params: JSON.parse(st.metadata[name] ?? "{}"),
    has: (t) => st.tensors.has(`${name}.${t}`),
    data: (t) => asFloat32(get(t)),
    shape: (t) => get(t).shape,
    tensor: (rt, t, requiresGrad = false) => {
      const v = get(t);
      const x = rt.tensor(v.data as ArrayLike<number>, v.shape, v.dtype === "I32" ? "i32" : "f32");
      x.requiresGrad = requiresGrad;
      x.name = t;
      return x;
    },
  };
}

export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Fails with the worst element unless |got - want| <= atol + rtol * |want| everywhere. */
export function assertClose(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: Tolerance,
): number {
  if (got.length !== want.length) {
    throw new Error(`${what}: ${got.length} values, expected ${want.length}`);
  }
  let worst = -1, worstExcess = 0, maxDiff = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
    const excess = Number.isNaN(d) ? Infinity : d - (tol.atol + tol.rtol * Math.abs(want[i]));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: max |diff| ${
        maxDiff.toExponential(2)
      } above tolerance (atol ${tol.atol}, rtol ${tol.rtol}); ` +
        `worst at [${worst}]: got ${got[worst]}, expected ${want[worst]}`,
    );
  }
  return maxDiff;
}

export async function readF32(rt: Runtime, t: Tensor): Promise<Float32Array> {
  return Float32Array.from(await rt.read(t));
}

/** Deterministic pseudo-random numbers for tests (mulberry32). */
export function randn(n: number, seed = 1, scale = 1): Float32Array {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u()) * scale;
  }
  return out;
}
