#!/usr/bin/env -S deno run -A
// `deno run -A train.ts --model vanilla` = `heatformer train --model vanilla`.
import { main } from "./main.ts";

if (import.meta.main) {
  Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp");
  await main(["train", ...Deno.args]);
}
