// Every matmul kernel variant (register-tiled, subgroup-shared at several tile sizes,
// shared-memory) on odd shapes, both transposes, batch and broadcast, with the bias +
// activation epilogue, pre-activation output and accumulation, against the TS reference.
// Also reruns the attention fixtures on the portable (non-subgroup) kernels.
import { map } from "../kernels/map.ts";
import { chooseTiling, matmul, matmulReference, type MatmulTiling } from "../kernels/matmul.ts";
import { attentionBackward, attentionForward, packedPart } from "../kernels/attention/mod.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { assertEquals } from "./assert.ts";
import { assertClose, fixture, gpuTest, lacks, randn, readF32 } from "./helpers.ts";

const noSubgroups = await lacks("8-lane subgroups");

const TILINGS: MatmulTiling[] = [
  { kind: "register", tm: 4, tn: 4, wgx: 8, wgy: 8 },
  { kind: "register", tm: 8, tn: 8, wgx: 4, wgy: 4 },
  { kind: "shared", tm: 4, tn: 4, wgx: 16, wgy: 16 },
  { kind: "shared", tm: 8, tn: 8, wgx: 16, wgy: 16 }, // 128 x 128 tiles (big GPUs)
  { kind: "shared", tm: 2, tn: 4, wgx: 8, wgy: 4 },
  { kind: "subgroup", tm: 1, tn: 4, wgx: 4, wgy: 2 },
  { kind: "subgroup", tm: 2, tn: 4, wgx: 1, wgy: 1 }, // lavapipe's choice for training shapes
  { kind: "subgroup", tm: 3, tn: 4, wgx: 4, wgy: 2 },
];

const SHAPES: [number, number, number, number, boolean, boolean][] = [
  // batch, m, n, k, transA, transB
  [1, 37, 29, 33, false, false],
  [2, 24, 20, 16, true, false],
  [3, 9, 13, 7, false, true],
  [1, 70, 66, 40, true, true],
  [2, 1, 1, 1, false, false],
];
// Aligned operands: the shared kernel stages both as vec4 (the other kinds have their vec4 paths
// covered by the aligned shapes above).
const ALIGNED: typeof SHAPES = [[2, 12, 16, 20, false, false]];

const gelu = (x: number) => {
  // erf via the same rational approximation's reference: use a high-accuracy series
  const t = 1 / (1 + 0.5 * Math.abs(x / Math.SQRT2));
  const y = 1 - t * Math.exp(
        -(x * x) / 2 - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
                      t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
                                      t * (-0.82215223 + t * 0.17087277)))))))),
      );
  return 0.5 * x * (1 + (x >= 0 ? y : -y));
};

/** Every product of `shapes` with `tiling`: plain, bias + GELU + pre-activation, accumulate,
 * and B broadcast over A's batch, against the TypeScript reference. */
async function checkProducts(rt: Runtime, tiling: MatmulTiling, shapes: typeof SHAPES) {
  // Large unrolled tiles compile slowly on llvmpipe: they get the epilogue variants on two
  // shapes, every shape in the plain product.
  const big = tiling.tm * tiling.tn >= 64 || (tiling.kind === "subgroup" && tiling.tm >= 3);
  for (const [si, [batch, m, n, k, ta, tb]] of shapes.entries()) {
    const full = !big || si % 2 === 1;
    const av = randn(batch * m * k, m + 1),
      bv = randn(batch * k * n, n + 2),
      bias = randn(n, 3);
    const prev = randn(batch * m * n, 4);
    const ref = matmulReference(av, bv, batch, m, n, k, ta, tb);
    const held = rt.tidy(() => {
      const a = rt.tensor(av, ta ? [batch, k, m] : [batch, m, k]);
      const b = rt.tensor(bv, tb ? [batch, n, k] : [batch, k, n]);
      const plain = matmul(rt, a, b, { transA: ta, transB: tb, tiling });
      if (!full) return { plain };
      const pre = rt.empty([batch, m, n]);
      const act = matmul(rt, a, b, {
        transA: ta,
        transB: tb,
        tiling,
        bias: rt.tensor(bias, [n]),
        act: "gelu",
        preact: pre,
      });
      const acc = rt.tensor(prev, [batch, m, n]);
      matmul(rt, a, b, { transA: ta, transB: tb, tiling, out: acc, accumulate: true });
      // broadcast B (shared weights) over A's batch
      const b2 = rt.tensor(bv.slice(0, k * n), tb ? [n, k] : [k, n]);
      const bc = ta ? null : matmul(rt, a, b2, { transB: tb, tiling });
      return { plain, act, pre, acc, bc: bc ?? map(rt, [], "0.0", { out: rt.empty([1]) }) };
    });
    const what = `${tiling.kind} b${batch} ${m}x${n}x${k} tA=${ta} tB=${tb}`;
    const tol = { atol: 1e-4, rtol: 1e-4 };
    assertClose(`${what} plain`, await readF32(rt, held.plain), ref, tol);
    if (!("act" in held) || !held.act || !held.pre || !held.acc || !held.bc) {
      rt.dispose(held.plain);
      continue;
    }
    const withBias = ref.map((v, i) => v + bias[i % n]);
    assertClose(`${what} preact`, await readF32(rt, held.pre), withBias, tol);
    assertClose(`${what} gelu`, await readF32(rt, held.act), withBias.map(gelu), {
      atol: 2e-4,
      rtol: 2e-4,
    });
    assertClose(
      `${what} accumulate`,
      await readF32(rt, held.acc),
      ref.map((v, i) => v + prev[i]),
      tol,
    );
    if (!ta) {
      const refB = matmulReference(av, bv, batch, m, n, k, false, tb, true);
      assertClose(`${what} broadcast B`, await readF32(rt, held.bc), refB, tol);
    }
    for (const t of Object.values(held)) rt.dispose(t);
  }
}

for (const tiling of TILINGS) {
  gpuTest(
    `matmul ${tiling.kind} ${tiling.tm}x${tiling.tn} on odd shapes, epilogues`,
    async (rt) => {
      await checkProducts(rt, tiling, tiling.kind === "shared" ? [...SHAPES, ...ALIGNED] : SHAPES);
    },
    { skip: tiling.kind === "subgroup" ? noSubgroups : null },
  );
}

// Split-K (what big GPUs get for few output tiles over a long K), forced here: K cut into
// equal slices (3 of 32, 4 of 30, 5 of 40...), partials summed with the epilogue after.
const SPLIT_SHAPES: typeof SHAPES = [
  [1, 37, 29, 96, false, false],
  [1, 9, 13, 120, true, false],
  [1, 70, 66, 64, true, true],
  [1, 1, 17, 200, false, true],
  [2, 5, 6, 40, false, false], // batched: not split
];
for (
  const tiling of [
    { kind: "register", tm: 4, tn: 4, wgx: 8, wgy: 8, splitK: 4 },
    { kind: "shared", tm: 2, tn: 4, wgx: 8, wgy: 4, splitK: 5 },
  ] as MatmulTiling[]
) {
  gpuTest(
    `matmul split-K ${tiling.splitK} (${tiling.kind}) on odd shapes, epilogues`,
    (rt) => checkProducts(rt, tiling, SPLIT_SHAPES),
  );
}

// The portable kernels at 64 rows per workgroup (software adapters) and at 16 and 32 (what
// GPUs get for short sequences: more workgroups per head).
gpuTest("attention: the portable (non-subgroup) kernels match PyTorch too", async (rt) => {
  rt.useSubgroups = false;
  try {
    for (const rows of [64, 16, 32]) {
      // 16 and 32 on the fixtures with several row blocks per head (L = 70, 33) and a 2-D mask
      for (const i of rows === 64 ? [0, 1, 2, 3, 4] : [2, 3, 4]) {
        const f = await fixture(`attention${i}`);
        const held = rt.tidy(() => {
          const q = f.tensor(rt, "q"), k = f.tensor(rt, "k"), v = f.tensor(rt, "v");
          const mask = f.has("mask") ? f.tensor(rt, "mask") : undefined;
          const { out, lse } = attentionForward(rt, q, k, v, { mask, rows });
          const dout = f.tensor(rt, "dout");
          const g = attentionBackward(rt, dout, q, k, v, out, lse, { mask, rows });
          return { out, ...g };
        });
        const tol = { atol: 1e-4, rtol: 1e-4 };
        const what = `attention${i} rows ${rows}`;
        assertClose(`${what} out`, await readF32(rt, held.out), f.data("out"), tol);
        assertClose(`${what} dq`, await readF32(rt, held.dq), f.data("dq"), tol);
        assertClose(`${what} dk`, await readF32(rt, held.dk), f.data("dk"), tol);
        assertClose(`${what} dv`, await readF32(rt, held.dv), f.data("dv"), tol);
        for (const t of Object.values(held)) rt.dispose(t);
      }
    }
  } finally {
    rt.useSubgroups = true;
  }
});

// Strided operands: the head-major (B, H, L, D) views of a packed (B, L, 3, H, D) attention
// projection, read in place, and an output written through a permuted view.
const STRIDED_TILINGS: MatmulTiling[] = [
  { kind: "register", tm: 4, tn: 4, wgx: 8, wgy: 8 },
  { kind: "shared", tm: 2, tn: 4, wgx: 8, wgy: 4 },
  { kind: "subgroup", tm: 2, tn: 4, wgx: 1, wgy: 1 },
];
for (const tiling of STRIDED_TILINGS) {
  gpuTest(`matmul ${tiling.kind} ${tiling.tm}x${tiling.tn} on strided 4-D views`, async (rt) => {
    for (const [B, L, H, D] of [[2, 13, 3, 8], [1, 5, 1, 4], [2, 9, 2, 6]]) {
      const pv = randn(B * L * 3 * H * D, L + D);
      const at = (b: number, l: number, part: number, h: number, d: number) =>
        pv[(((b * L + l) * 3 + part) * H + h) * D + d];
      // Host copies of q and k as (B*H, L, D) for the reference.
      const headMajor = (part: number) =>
        Float64Array.from(
          { length: B * H * L * D },
          (_, i) => {
            const d = i % D, l = Math.floor(i / D) % L, h = Math.floor(i / (D * L)) % H;
            return at(Math.floor(i / (D * L * H)), l, part, h, d);
          },
        );
      const q = headMajor(0), k = headMajor(1);
      const s = matmulReference(q, k, B * H, L, L, D, false, true); // q k^T
      const o = matmulReference(s, k, B * H, L, D, L); // s k
      const dk = matmulReference(s, q, B * H, L, D, L, true); // s^T q
      const held = rt.tidy(() => {
        const p = rt.tensor(pv, [B, L, 3, H, D]);
        const part = (i: number) => packedPart(p, i).permuteView([0, 2, 1, 3]);
        const sT = matmul(rt, part(0), part(1), { transB: true, tiling }); // (B, H, L, L)
        const out = rt.zeros([B, L, H, D]);
        matmul(rt, sT, part(1), { out: out.permuteView([0, 2, 1, 3]), tiling });
        const g = rt.zeros([B, L, 3, H, D]);
        const gk = packedPart(g, 1).permuteView([0, 2, 1, 3]);
        matmul(rt, sT, part(0), { transA: true, out: gk, tiling });
        return { sT, out, g };
      });
      const what = `${tiling.kind} B${B} L${L} H${H} D${D}`;
      const tol = { atol: 1e-4, rtol: 1e-4 };
      assertClose(`${what} q k^T`, await readF32(rt, held.sT), s, tol);
      // out (B, L, H, D) and dk (in part 1 of g) back to head-major order.
      const outV = await readF32(rt, held.out), gV = await readF32(rt, held.g);
      const toHeads = (v: Float32Array, parts: number, part: number) =>
        Float64Array.from({ length: B * H * L * D }, (_, i) => {
          const d = i % D, l = Math.floor(i / D) % L, h = Math.floor(i / (D * L)) % H;
          const b = Math.floor(i / (D * L * H));
          return v[(((b * L + l) * parts + part) * H + h) * D + d];
        });
      assertClose(`${what} out via a permuted view`, toHeads(outV, 1, 0), o, tol);
      assertClose(`${what} s^T q into a packed gradient`, toHeads(gV, 3, 1), dk, tol);
      assertClose(
        `${what} other parts untouched`,
        [0, 2].flatMap((i) => [...toHeads(gV, 3, i)]),
        new Float64Array(2 * B * H * L * D),
        { atol: 0, rtol: 0 },
      );
      for (const t of Object.values(held)) rt.dispose(t);
    }
  }, { skip: tiling.kind === "subgroup" ? noSubgroups : null });
}

Deno.test("matmul tiling: split-K on big GPUs for few tiles over a long K, never on lavapipe", () => {
  const shape = (m: number, n: number, k: number, batch = 1) => ({
    batch,
    m,
    n,
    k,
    transA: true,
    transB: false,
    aOffset: 0,
    bOffset: 0,
    cOffset: 0,
    lda: m,
    ldb: n,
    ldc: n,
    inner: 1,
    aBatchStride: 0,
    bBatchStride: 0,
    cBatchStride: 0,
    aInnerStride: 0,
    bInnerStride: 0,
    cInnerStride: 0,
    bias: false,
    biasOffset: 0,
    act: "none" as const,
    preact: false,
    accumulate: false,
    dtype: "f32" as const,
  });
  const gpu = { software: false, subgroups: true };
  // the study's vanilla heatmap embedding gradient: 53,312 x 156 over the batch's frames
  const embed = chooseTiling(shape(53312, 156, 16 * 48), gpu);
  assertEquals(embed.splitK, undefined); // 834 x 3 tiles: enough already
  const wgrad = chooseTiling(shape(156, 768, 53312), gpu); // 3 x 12 tiles over K = 53,312
  assertEquals(wgrad.splitK, 8);
  assertEquals(chooseTiling(shape(128, 128, 512), gpu).splitK, 2); // a block's weight gradient
  assertEquals(chooseTiling(shape(128, 128, 512, 8), gpu).splitK, undefined); // batched
  for (const s of [shape(156, 768, 53312), shape(128, 128, 512)]) {
    assertEquals(chooseTiling(s, { software: true, subgroups: true }).splitK, undefined);
    assertEquals(chooseTiling(s, { software: true, subgroups: false }).splitK, undefined);
  }
});
