// One peer measurement a process: `deno run -A --config bench/peers/deno.json
// bench/peers/main.ts '<PeerRequest as JSON>'` prints `{"ok": answer}` or `{"error": message}`
// as its last stdout line. bench/peer.ts runs it; this project's own deno.json and deno.lock
// keep TensorFlow.js and jax-js out of heatformer's.
import type { PeerAnswers, PeerReply, PeerRequest } from "../peer.ts";
import { tfjsMatmul } from "./tfjs.ts";
import { tfjsReferenceStep } from "./tfjs_train.ts";
import { jaxjsReferenceStep } from "./jaxjs_train.ts";

async function answer(r: PeerRequest): Promise<PeerAnswers[PeerRequest["peer"]]> {
  switch (r.peer) {
    case "tfjs-matmul":
      return await tfjsMatmul(r.sizes, r.minMs);
    case "tfjs-train":
      return await tfjsReferenceStep();
    case "jaxjs-train":
      return await jaxjsReferenceStep(r.device, { jit: r.jit });
  }
}

if (import.meta.main) {
  Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp");
  let reply: PeerReply<PeerRequest["peer"]>;
  try {
    reply = { ok: await answer(JSON.parse(Deno.args[0]) as PeerRequest) };
  } catch (e) {
    reply = { error: (e as Error).message };
  }
  console.log(JSON.stringify(reply));
  // Exit explicitly: jax-js's WebAssembly threads keep the event loop alive.
  Deno.exit(0);
}
