// TensorFlow.js for the pose worker (this folder, a project of its own: heatformer's deno.json
// and deno.lock never name TF.js). Backends: WebGPU on Deno's navigator.gpu where the adapter is
// a real GPU; WebAssembly (XNNPACK) otherwise, 15x WebGPU and CPU on lavapipe with 2 cores
// (docs/video.md); plain JavaScript (cpu) as the last resort.
import { isSoftwareAdapter } from "../../../runtime/device.ts";
import type { TfBackend } from "../worker_protocol.ts";

export type Tf = typeof import("@tensorflow/tfjs-core");
export type Converter = typeof import("@tensorflow/tfjs-converter");

export interface TfRuntime {
  tf: Tf;
  converter: Converter;
  backend: TfBackend;
}

/** Registers one backend with tfjs-core (each is its own npm package). */
async function importBackend(b: TfBackend): Promise<void> {
  switch (b) {
    case "webgpu":
      await import("@tensorflow/tfjs-backend-webgpu");
      return;
    case "wasm":
      await import("@tensorflow/tfjs-backend-wasm");
      return;
    case "cpu":
      await import("@tensorflow/tfjs-backend-cpu");
      return;
  }
}

/** The backends `auto` tries, best first: WebGPU only on a GPU that is not emulated. */
async function autoOrder(): Promise<TfBackend[]> {
  const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
  const gpu = adapter && !isSoftwareAdapter(adapter.info);
  return gpu ? ["webgpu", "wasm", "cpu"] : ["wasm", "cpu"];
}

/** tfjs-core and the converter on the first backend of `choice` that starts. */
export async function loadTf(choice: TfBackend | "auto"): Promise<TfRuntime> {
  const tf = await import("@tensorflow/tfjs-core");
  const converter = await import("@tensorflow/tfjs-converter");
  tf.enableProdMode();
  const failures: string[] = [];
  for (const b of choice === "auto" ? await autoOrder() : [choice]) {
    try {
      await importBackend(b);
      if (await tf.setBackend(b)) {
        // Deno passes for Node.js, and tfjs-backend-cpu would advise installing tfjs-node
        // (only now: the wasm backend reads its binary from disk where IS_NODE is set)
        tf.env().set("IS_NODE", false);
        return { tf, converter, backend: b };
      }
      failures.push(`${b}: did not start`);
    } catch (e) {
      failures.push(`${b}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no TensorFlow.js backend started (${failures.join("; ")})`);
}
