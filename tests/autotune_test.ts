// The autotuner (runtime/autotune.ts) on lavapipe, forced on: a product's first use queues its
// shape and runs the heuristic; tuning times every candidate and caches the fastest per
// adapter; the answer is then used (seen in the recorded kernels' names), also by a later
// process reading the cache, and never by another adapter.
import * as ops from "../autograd/ops.ts";
import { attentionBackward, attentionForward, chooseVariant } from "../kernels/attention/mod.ts";
import { matmul, matmulReference } from "../kernels/matmul.ts";
import { adapterKey, Autotuner, tunePending } from "../runtime/autotune.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { assert, assertEquals } from "./assert.ts";
import { assertClose, gpuTest, randn, readF32 } from "./helpers.ts";

const [M, N, K] = [20, 24, 600];
const av = randn(M * K, 1), bv = randn(K * N, 2);
const ref = matmulReference(av, bv, 1, M, N, K, false, false);

/** The product on the runtime's current tuner: its result and the kernels it recorded. */
async function product(rt: Runtime): Promise<{ y: Float32Array; kernels: string[] }> {
  const a = rt.tensor(av, [M, K]), b = rt.tensor(bv, [K, N]);
  const { graph, result } = rt.capture(() => matmul(rt, a, b));
  rt.replay(graph);
  const y = await readF32(rt, result);
  const kernels = graph.commands.flatMap((c) => (c.kind === "dispatch" ? [c.name] : []));
  graph.dispose();
  [a, b, result].forEach((t) => rt.dispose(t));
  return { y, kernels };
}

/** The kernel names a tiling choice records: its tile, and the split-K sum when it splits. */
function expectedKernels(choice: string): RegExp[] {
  const t = JSON.parse(choice);
  return [
    new RegExp(`${t.kind} ${t.tm}x${t.tn}$`),
    ...(t.splitK ? [new RegExp(`split-K reduce .* /${t.splitK}$`)] : []),
  ];
}

async function withTuner(rt: Runtime, file: string, fn: (t: Autotuner) => Promise<void>) {
  const tuner = await Autotuner.open(rt.gpu, file);
  rt.tuner = tuner;
  try {
    await fn(tuner);
  } finally {
    rt.tuner = null;
  }
}

gpuTest("autotune: measure at first use, cache per adapter, reuse", async (rt) => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/cache/autotune.json`;
  let key = "", choice = "";
  await withTuner(rt, file, async (tuner) => {
    const first = await product(rt);
    assertClose("heuristic result", first.y, ref, { atol: 1e-3, rtol: 1e-4 });
    assertEquals(tuner.pending, 1);
    assert(await tunePending(rt), "something was measured");
    assertEquals(tuner.pending, 0);
    const saved = JSON.parse(await Deno.readTextFile(file));
    const answers = Object.values(saved.adapters[adapterKey(rt.gpu)]) as {
      key: string;
      choice: string;
      ms: Record<string, number>;
    }[];
    assertEquals(answers.length, 1);
    ({ key, choice } = answers[0]);
    const times = Object.entries(answers[0].ms);
    assert(times.length >= 5, `candidates timed: ${times.length}`);
    assertEquals(choice, times.reduce((a, b) => (b[1] < a[1] ? b : a))[0]);
    const tuned = await product(rt);
    for (const re of expectedKernels(choice)) {
      assert(tuned.kernels.some((k) => re.test(k)), `${re} in ${tuned.kernels}`);
    }
    assertClose("tuned result", tuned.y, ref, { atol: 1e-3, rtol: 1e-4 });
  });
  // A later process: the cached answer, nothing queued.
  await withTuner(rt, file, async (tuner) => {
    await product(rt);
    assertEquals(tuner.pending, 0);
  });
  // A cached answer is what runs: force 128 x 128 tiles split 4 ways.
  const forced = JSON.stringify({ kind: "shared", tm: 8, tn: 8, wgx: 16, wgy: 16, splitK: 4 });
  const cache = (adapter: string) => ({
    version: 1,
    adapters: { [adapter]: { [key]: { key, choice: forced, ms: {} } } },
  });
  await Deno.writeTextFile(file, JSON.stringify(cache(adapterKey(rt.gpu))));
  await withTuner(rt, file, async (tuner) => {
    const r = await product(rt);
    assertEquals(tuner.pending, 0);
    for (const re of expectedKernels(forced)) {
      assert(r.kernels.some((k) => re.test(k)), `${re} in ${r.kernels}`);
    }
    assertClose("forced result", r.y, ref, { atol: 1e-3, rtol: 1e-4 });
  });
  // Another adapter's answers are not this one's.
  await Deno.writeTextFile(file, JSON.stringify(cache("another | gpu")));
  await withTuner(rt, file, async (tuner) => {
    await product(rt);
    assertEquals(tuner.pending, 1);
  });
  await Deno.remove(dir, { recursive: true });
});

gpuTest("autotune: attention's rows per workgroup, per pass", async (rt) => {
  const dir = await Deno.makeTempDir();
  rt.useSubgroups = false; // the portable kernels (what GPUs run)
  try {
    await withTuner(rt, `${dir}/autotune.json`, async (tuner) => {
      const [b, l, h, d] = [2, 40, 2, 8];
      const held = rt.tidy(() => {
        const [q, k, v] = [1, 2, 3].map((s) => rt.tensor(randn(b * l * h * d, s), [b, l, h, d]));
        const { out, lse } = attentionForward(rt, q, k, v);
        attentionBackward(rt, rt.tensor(randn(b * l * h * d, 4), [b, l, h, d]), q, k, v, out, lse);
        return { out };
      });
      rt.dispose(held.out);
      assertEquals(tuner.pending, 3); // forward, dq, dk/dv
      const results = await tuner.tune(rt, { minMs: 1 });
      assertEquals(results.map((r) => r.key.split(" ")[1]), ["forward", "dq", "dkdv"]);
      for (const r of results) assertEquals(Object.keys(r.ms).sort(), ["16", "32", "64"]);
    });
  } finally {
    rt.useSubgroups = true;
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("autotune: dense or fused attention, timed both ways, the answer used", async (rt) => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/autotune.json`;
  const [b, l, h, d] = [2, 20, 2, 8];
  const qkv = [1, 2, 3].map((s) => randn(b * l * h * d, s));
  /** Kernel names of one forward of ops.attention under the current tuner. */
  const kernels = () => {
    const [q, k, v] = qkv.map((x) => rt.tensor(x, [b, l, h, d]));
    const { graph } = rt.capture(() => rt.tidy(() => void ops.attention(q, k, v)));
    const names = graph.commands.flatMap((c) => (c.kind === "dispatch" ? [c.name] : []));
    graph.dispose();
    [q, k, v].forEach((t) => rt.dispose(t));
    return names;
  };
  try {
    let key = "";
    await withTuner(rt, file, async (tuner) => {
      const [q, k, v] = qkv.map((x) => rt.tensor(x, [b, l, h, d]));
      chooseVariant(q, k, v); // queues the choice alone
      [q, k, v].forEach((t) => rt.dispose(t));
      const results = await tuner.tune(rt, { minMs: 1 });
      const impl = results.find((r) => r.key.startsWith("attention impl"));
      assert(impl, `tuned: ${results.map((r) => r.key)}`);
      assertEquals(Object.keys(impl.ms).sort(), ["dense", "fused"]);
      key = impl.key;
    });
    for (
      const [choice, has, lacks] of [["fused", "attention", "softmax"], [
        "dense",
        "softmax",
        "attention",
      ]]
    ) {
      const cache = {
        version: 1,
        adapters: { [adapterKey(rt.gpu)]: { [key]: { key, choice, ms: {} } } },
      };
      await Deno.writeTextFile(file, JSON.stringify(cache));
      await withTuner(rt, file, () => {
        const names = kernels();
        assert(names.includes(has) && !names.includes(lacks), `${choice}: ${names}`);
        return Promise.resolve();
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("autotune: a candidate that cannot run is skipped, never chosen", async (rt) => {
  const dir = await Deno.makeTempDir();
  await withTuner(rt, `${dir}/autotune.json`, async (tuner) => {
    tuner.choose({
      key: "test failing candidate",
      candidates: ["too big", "fits"], // the failing one is the heuristic
      prepare: (rt) => {
        const t = rt.empty([1024]);
        return {
          record: (c) => {
            if (c === "too big") throw new RangeError("needs a buffer above the binding limit");
            rt.clear(t);
          },
          dispose: () => rt.dispose(t),
        };
      },
    });
    const [r] = await tuner.tune(rt, { minMs: 1 });
    assertEquals(r.choice, "fits");
    assertEquals(r.ms["too big"], Infinity);
  });
  await Deno.remove(dir, { recursive: true });
});
