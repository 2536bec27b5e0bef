// The runtime's contracts: clear errors for bad input, buffers past the binding limit
// refused, compile errors naming the kernel, one command buffer per recorded step, tidy()
// returning memory to the pool, and f16 storage with f32 accumulation.
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import * as ops from "../autograd/ops.ts";
import { backward } from "../autograd/tape.ts";
import { matmul, matmulReference } from "../kernels/matmul.ts";
import { map } from "../kernels/map.ts";
import { ShapeError } from "../kernels/wgsl.ts";
import { KernelError } from "../runtime/runtime.ts";
import { assertClose, gpuTest, lacks, randn, readF32 } from "./helpers.ts";

const noF16 = await lacks("shader-f16");

gpuTest("shape mismatches name the op and the shapes", (rt) => {
  rt.tidy(() => {
    const a = rt.zeros([2, 3]), b = rt.zeros([4, 5]);
    const e = assertThrows(() => matmul(rt, a, b), ShapeError);
    assert(
      e.message.includes("matmul") && e.message.includes("[2, 3]") && e.message.includes("[4, 5]"),
      e.message,
    );
    const e2 = assertThrows(() => ops.add(rt.zeros([2, 3]), rt.zeros([4])), ShapeError);
    assert(e2.message.startsWith("add:") && e2.message.includes("[4]"), e2.message);
    const e3 = assertThrows(
      () => ops.attention(rt.zeros([1, 2, 1, 4]), rt.zeros([1, 2, 1, 8]), rt.zeros([1, 2, 1, 8])),
      ShapeError,
    );
    assert(e3.message.startsWith("attention:"), e3.message);
    const e4 = assertThrows(() => ops.patchify(rt.zeros([1, 1, 5, 4, 4]), [2, 2, 2]), ShapeError);
    assert(e4.message.includes("tubelet"), e4.message);
  });
  return Promise.resolve();
});

gpuTest("unsupported dtypes are refused by name", (rt) => {
  rt.tidy(() => {
    const a = rt.zeros([2, 2], "i32"), b = rt.zeros([2, 2], "i32");
    const e = assertThrows(() => matmul(rt, a, b), ShapeError);
    assert(e.message.includes("unsupported dtype i32"), e.message);
    const e2 = assertThrows(() => ops.crossEntropy(rt.zeros([2, 3]), rt.zeros([2])), ShapeError);
    assert(e2.message.includes("crossEntropy") && e2.message.includes("f32"), e2.message);
  });
  return Promise.resolve();
});

gpuTest("a tensor past the adapter's binding limit is refused with a clear message", (rt) => {
  const limit = rt.gpu.description.limits.maxStorageBufferBindingSize;
  const e = assertThrows(() => rt.empty([Math.ceil(limit / 4) + 1024], "f32", "huge"), RangeError);
  assert(e.message.includes("huge") && e.message.includes("storage binding limit"), e.message);
  return Promise.resolve();
});

gpuTest("a WGSL compile error names the kernel", async (rt) => {
  const t = rt.empty([4]);
  rt.run({ name: "broken", code: "fn main( {", grid: [1, 1, 1], bindings: [t] });
  const e = await assertRejects(() => rt.sync(), KernelError);
  assert(e.message.includes(`kernel "broken"`), e.message);
  rt.dispose(t);
});

gpuTest("a training step records into one command buffer without waiting", async (rt) => {
  await rt.sync();
  const w = rt.tensor(randn(16 * 8, 3), [16, 8], "f32", { persistent: true });
  w.requiresGrad = true;
  w.grad = rt.tensor(new Float32Array(128), [16, 8], "f32", { persistent: true });
  const x = rt.tensor(randn(4 * 8, 4), [4, 8], "f32", { persistent: true });
  const labels = rt.tensor([1, 2, 3, 0], [4], "i32", { persistent: true });
  const before = { ...rt.stats };
  rt.tidy(() => {
    const loss = ops.crossEntropy(
      ops.linear(ops.layerNorm(x, rt.zeros([8]), rt.zeros([8])), w, null, "gelu"),
      labels,
    );
    backward(loss);
  });
  rt.flush();
  assertEquals(rt.stats.submits - before.submits, 1, "one submit per step");
  assertEquals(rt.stats.readbacks - before.readbacks, 0, "no readback inside the step");
  // zeros() writes host data, which submits pending work first: all of it happened before recording.
  await rt.sync();
});

gpuTest("tidy() returns intermediates to the pool and keeps what it returns", async (rt) => {
  await rt.sync();
  const live0 = rt.pool.liveBytes;
  const kept = rt.tidy(() => {
    const a = rt.tensor(randn(1000, 1), [10, 100]);
    const b = map(rt, [a], "v0 * 2.0");
    return map(rt, [b], "v0 + 1.0");
  });
  assert(
    rt.pool.liveBytes - live0 <= 4096 + 256,
    `only the result stays live (${rt.pool.liveBytes - live0} bytes)`,
  );
  const v = await readF32(rt, kept);
  assertEquals(v.length, 1000);
  rt.dispose(kept);
  assertEquals(rt.pool.liveBytes, live0);
});

gpuTest("f16 storage with f32 accumulation (shader-f16)", async (rt) => {
  const [m, k, n] = [37, 130, 21];
  const av = randn(m * k, 11), bv = randn(k * n, 12);
  const held = rt.tidy(() => {
    const a = rt.tensor(av, [m, k], "f16"), b = rt.tensor(bv, [k, n], "f16");
    const c = matmul(rt, a, b);
    const ln = ops.layerNorm(c, rt.tensor(new Array(n).fill(1), [n], "f16"), rt.zeros([n], "f16"));
    return { c, ln };
  });
  assertEquals(held.c.dtype, "f16");
  const ref = matmulReference(av, bv, 1, m, n, k);
  // f16 inputs (11-bit mantissa) summed over k = 130 in f32: error ~ sqrt(k) * 2^-11 * |a||b|.
  assertClose("f16 matmul", await readF32(rt, held.c), ref, { atol: 0.05, rtol: 0.01 });
  const ln = await readF32(rt, held.ln);
  for (let r = 0; r < m; r++) {
    const row = ln.slice(r * n, (r + 1) * n);
    const mu = row.reduce((s, v) => s + v, 0) / n;
    assert(Math.abs(mu) < 0.01, `f16 layer norm row ${r} mean ${mu}`);
  }
  rt.dispose(held.c);
  rt.dispose(held.ln);
  // attention (subgroup and portable kernels) in f16 storage against f32
  for (const sub of [true, false]) {
    rt.useSubgroups = sub;
    const [b, l, h, d] = [2, 19, 2, 16];
    const qv = randn(b * l * h * d, 41),
      kv = randn(b * l * h * d, 42),
      vv = randn(b * l * h * d, 43);
    const outs = rt.tidy(() =>
      (["f32", "f16"] as const).map((dt) =>
        ops.attention(
          rt.tensor(qv, [b, l, h, d], dt),
          rt.tensor(kv, [b, l, h, d], dt),
          rt.tensor(vv, [b, l, h, d], dt),
        )
      )
    );
    assertEquals(outs[1].dtype, "f16");
    assertClose(
      `f16 attention (subgroups ${sub})`,
      await readF32(rt, outs[1]),
      await readF32(rt, outs[0]),
      { atol: 5e-3, rtol: 1e-2 },
    );
    for (const t of outs) rt.dispose(t);
  }
  rt.useSubgroups = true;
}, { skip: noF16 });

gpuTest("read / readMany: contiguous, permuted, sliced and f16 views in one sync", async (rt) => {
  const data = Array.from({ length: 24 }, (_, i) => i);
  const t = rt.tensor(data, [2, 3, 4], "f32", { persistent: true });
  const h = rt.tensor(data, [2, 3, 4], "f16", { persistent: true });
  const before = rt.stats.readbacks;
  const [all, perm, sliced, half] = await rt.readMany([
    t,
    t.permuteView([2, 0, 1]),
    t.slice0(1, 2),
    h.permuteView([1, 0, 2]),
  ]);
  assertEquals(rt.stats.readbacks - before, 1, "one host sync");
  assertEquals(Array.from(all), data);
  // perm[k, i, j] = t[i, j, k]
  assertEquals(
    Array.from(perm),
    [0, 1, 2, 3].flatMap((k) =>
      [0, 1].flatMap((i) => [0, 1, 2].map((j) => data[i * 12 + j * 4 + k]))
    ),
  );
  assertEquals(Array.from(sliced), data.slice(12));
  assertEquals(
    Array.from(half),
    [0, 1, 2].flatMap((j) =>
      [0, 1].flatMap((i) => [0, 1, 2, 3].map((k) => data[i * 12 + j * 4 + k]))
    ),
  );
  assertEquals(Array.from(await rt.read(t.permuteView([1, 0, 2]))), Array.from(half));
  rt.dispose(t);
  rt.dispose(h);
});

gpuTest("kernels bind from the 256-byte boundary: aligned views share a pipeline", async (rt) => {
  // One buffer holding three 5x7 matrices at offsets 0, 64 (one binding boundary on) and 70
  // (6 elements past it): each product is right, and the two aligned ones reuse one kernel.
  const [m, k, n] = [5, 7, 3];
  const buf = rt.tensor(randn(200, 3), [200], "f32", { persistent: true });
  const b = rt.tensor(randn(k * n, 4), [k, n], "f32", { persistent: true });
  const host = await readF32(rt, buf);
  const at = (o: number) => buf.slice0(o, o + m * k).view([m, k]);
  const want = (o: number) =>
    matmulReference(host.subarray(o, o + m * k), randn(k * n, 4), 1, m, n, k);
  assertEquals([at(0).bindOffset, at(64).bindOffset, at(70).bindOffset], [0, 0, 6]);
  assertEquals([at(64).bindByteOffset, at(70).bindByteOffset], [256, 256]);
  const c0 = matmul(rt, at(0), b);
  const before = rt.stats.pipelines;
  const c64 = matmul(rt, at(64), b);
  assertEquals(rt.stats.pipelines - before, 0, "offset 64 reuses the offset-0 kernel");
  const c70 = matmul(rt, at(70), b);
  assertEquals(rt.stats.pipelines - before, 1, "offset 70 needs its own kernel");
  for (const [o, c] of [[0, c0], [64, c64], [70, c70]] as const) {
    assertClose(`matmul at offset ${o}`, await readF32(rt, c), want(o), { atol: 1e-5, rtol: 1e-5 });
  }
  rt.dispose(buf);
  rt.dispose(b);
});
