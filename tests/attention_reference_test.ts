// The plain TypeScript attention (kernels/attention/reference.ts) against PyTorch's, forward and
// backward; then every variant that runs on this adapter against it at odd shapes, through the
// check `bench kernels` runs before it times a variant.
import { attentionCase, checkAttention, disposeCase } from "../bench/attention_check.ts";
import { ATTENTION_VARIANTS, variantServes } from "../kernels/attention/mod.ts";
import {
  attentionBackwardReference,
  attentionForwardReference,
} from "../kernels/attention/reference.ts";
import { assertClose, fixture, gpuTest } from "./helpers.ts";

for (let i = 0; i < 5; i++) {
  Deno.test(`attention reference ${i} vs PyTorch`, async () => {
    const f = await fixture(`attention${i}`);
    const [b, lq, h, d] = f.shape("q"), lk = f.shape("k")[1];
    const dm = { b, h, lq, lk, d };
    const [q, k, v] = [f.data("q"), f.data("k"), f.data("v")];
    const mask = f.has("mask") ? f.data("mask") : undefined;
    const tol = { atol: 1e-5, rtol: 1e-5 };
    const scale = 1 / Math.sqrt(d);
    assertClose(
      `attention${i} out`,
      attentionForwardReference({ q, k, v, dm, scale, mask }),
      f.data("out"),
      tol,
    );
    const g = attentionBackwardReference(f.data("dout"), { q, k, v, dm, scale, mask });
    for (const n of ["dq", "dk", "dv"] as const) {
      assertClose(`attention${i} ${n}`, g[n], f.data(n), tol);
    }
  });
}

gpuTest("attention: every variant matches the reference at odd shapes", async (rt) => {
  for (const [b, lq, lk, h, d] of [[2, 7, 9, 2, 4], [1, 19, 19, 3, 16]]) {
    const c = await attentionCase(rt, { b, h, lq, lk, d }, "f32");
    try {
      for (const variant of ATTENTION_VARIANTS) {
        if (variantServes(variant, c.q, c.k, c.v)) await checkAttention(rt, variant, c);
      }
    } finally {
      disposeCase(rt, c);
    }
  }
});
