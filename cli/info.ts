// `heatformer info`: what the adapter is and can do.
import { acquireGpu } from "../runtime/device.ts";
import { fmtBytes } from "../runtime/buffer_pool.ts";
import { printJson } from "./output.ts";

export async function infoCommand(opts: { json?: boolean }): Promise<void> {
  const gpu = await acquireGpu();
  const d = gpu.description;
  if (opts.json) {
    printJson({ adapter: d, deno: Deno.version.deno });
    return;
  }
  console.log(`adapter   ${d.name}`);
  console.log(
    `backend   ${d.backend}${
      d.isFallback ? " (software fallback: fine for tests, slow for training)" : ""
    }`,
  );
  console.log(`f16       ${d.f16 ? "yes (shader-f16)" : "no"}`);
  console.log(`subgroups ${d.subgroups ? "yes" : "no"}`);
  console.log(`timestamp ${d.timestampQuery ? "yes" : "no"}`);
  console.log(`features  ${d.enabledFeatures.join(", ")}`);
  console.log(`binding   ${fmtBytes(d.limits.maxStorageBufferBindingSize)} max storage binding`);
  for (const [k, v] of Object.entries(d.limits)) console.log(`  ${k.padEnd(36)} ${v}`);
  gpu.device.destroy();
}
