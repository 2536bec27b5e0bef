// The reference training step (2-layer pre-norm encoder, batch 8, sequence 64, width 128,
// 4 heads, MLP 512, Adam) written with @jax-js/jax on its WebAssembly backend, the fastest
// TypeScript peer on a machine without a GPU. The loss and its gradient are one jit-compiled
// function and Adam another, as a JAX user would write it. jax-js counts references by hand:
// every call consumes its array arguments, `.ref` keeps one alive.
import type { numpy as npT } from "@jax-js/jax";
import type { PeerTime } from "../peer.ts";
import { medianMs } from "../timing.ts";

type Arr = npT.Array;
type Layer = {
  g1: Arr;
  b1: Arr;
  wqkv: Arr;
  bqkv: Arr;
  wo: Arr;
  bo: Arr;
  g2: Arr;
  b2: Arr;
  w1: Arr;
  c1: Arr;
  w2: Arr;
  c2: Arr;
};
type Params = Layer[];

export async function jaxjsReferenceStep(
  device: "wasm" | "webgpu" = "wasm",
  opts: { jit?: boolean } = {},
): Promise<PeerTime> {
  const useJit = opts.jit ?? true;
  const jax = await import("@jax-js/jax");
  const { jit, nn, numpy: np, random, tree, valueAndGrad } = jax;
  const got = await jax.init(device);
  if (!got.includes(device)) throw new Error(`jax-js: no ${device} backend`);
  jax.defaultDevice(device);
  const [B, L, C, H, F] = [8, 64, 128, 4, 512];
  let key = random.key(0);
  const normal = (shape: number[], std: number): Arr => {
    const [k1, k2] = random.split(key, 2) as unknown as [Arr, Arr];
    key = k1;
    return random.normal(k2, shape).mul(std);
  };
  const params: Params = [0, 1].map(() => ({
    g1: np.ones([C]),
    b1: np.zeros([C]),
    wqkv: normal([C, 3 * C], 0.02),
    bqkv: np.zeros([3 * C]),
    wo: normal([C, C], 0.02),
    bo: np.zeros([C]),
    g2: np.ones([C]),
    b2: np.zeros([C]),
    w1: normal([C, F], 0.02),
    c1: np.zeros([F]),
    w2: normal([F, C], 0.02),
    c2: np.zeros([C]),
  }));
  const x = normal([B * L, C], 1);
  const labels = nn.oneHot(np.arange(B * L).astype(np.int32).mod(C), C);

  const ln = (h: Arr, g: Arr, b: Arr) => nn.standardize(h, -1, { epsilon: 1e-6 }).mul(g).add(b);
  const lossFn = (ps: Params, x: Arr, y: Arr): Arr => {
    let h = x;
    for (const p of ps) {
      const qkv = np.matmul(ln(h.ref, p.g1, p.b1), p.wqkv).add(p.bqkv).reshape([B, L, 3, H, C / H]);
      const part = (i: number) => qkv.ref.slice([], [], i);
      const [q, k, v] = [part(0), part(1), part(2)];
      qkv.dispose();
      const o = nn.dotProductAttention(q, k, v).reshape([B * L, C]);
      h = h.add(np.matmul(o, p.wo).add(p.bo));
      const u = nn.gelu(np.matmul(ln(h.ref, p.g2, p.b2), p.w1).add(p.c1));
      h = h.add(np.matmul(u, p.w2).add(p.c2));
    }
    return nn.logSoftmax(h, -1).mul(y).sum().mul(-1 / (B * L));
  };
  // jit traces once and fuses; eager runs op by op (what performance.md's 152 ms measured).
  const jitLoss = useJit ? jit(valueAndGrad(lossFn)) : null;
  const lossAndGrad = jitLoss ?? valueAndGrad(lossFn);
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const adamFn = (p: Params, g: Params, m: Params, v: Params, lrT: Arr) => {
    const m2 = tree.map((mi: Arr, gi: Arr) => mi.mul(b1).add(gi.mul(1 - b1)), m, tree.ref(g));
    const v2 = tree.map((vi: Arr, gi: Arr) => vi.mul(b2).add(gi.ref.mul(gi).mul(1 - b2)), v, g);
    const p2 = tree.map(
      (pi: Arr, mi: Arr, vi: Arr) => pi.sub(lrT.ref.mul(mi).div(np.sqrt(vi).add(eps))),
      p,
      tree.ref(m2),
      tree.ref(v2),
    );
    lrT.dispose();
    return [p2, m2, v2] as [Params, Params, Params];
  };
  const jitAdam = useJit ? jit(adamFn) : null;
  const adam = jitAdam ?? adamFn;

  let state: [Params, Params, Params] = [
    params,
    tree.map((a: Arr) => np.zerosLike(a.ref), params),
    tree.map((a: Arr) => np.zerosLike(a.ref), params),
  ];
  let t = 0;
  const step = async () => {
    t++;
    const [loss, grads] = lossAndGrad(tree.ref(state[0]), x.ref, labels.ref);
    const lrT = 1e-3 * Math.sqrt(1 - b2 ** t) / (1 - b1 ** t);
    state = adam(state[0], grads, state[1], state[2], np.array(lrT));
    await loss.data(); // the step is done when its loss can be read (data() consumes it)
  };
  try {
    const msPerStep = await medianMs(step);
    return { name: `jax-js-${device}${useJit ? "" : "-eager"}`, msPerStep };
  } finally {
    tree.dispose(state);
    x.dispose();
    labels.dispose();
    jitLoss?.dispose();
    jitAdam?.dispose();
  }
}
