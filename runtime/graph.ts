// A captured step: the GPU commands that one call of a function recorded (dispatches with
// their pipelines and bind groups, clears, copies) plus its host-side effects, replayed later
// without running that function again. What a CUDA graph or a jitted step is: a training
// step's autograd, tidy scopes and cache lookups cost milliseconds of host time per step, and
// on a software adapter that host time is taken from the two cores doing the GPU work.
//
// Rules (Runtime.capture):
// - Every buffer a command touches is pinned: the pool does not hand it out again while the
//   graph lives, so temporaries keep their places between replays.
// - Per-step inputs (batches, labels, learning rate, seeds) live in tensors made before the
//   capture and are written before each replay. Host data uploaded inside the captured
//   function into a tensor it allocated is a constant of the graph (re-copied on replay);
//   writing a tensor made outside is an error, because a replay would repeat stale data.
// - Host-side state that must advance every step (the optimiser's step count) goes through
//   Runtime.host(fn), which the graph runs again on each replay.
import type { PooledBuffer } from "./buffer_pool.ts";
import type { Runtime } from "./runtime.ts";
import type { Tensor } from "./tensor.ts";

export type GraphCommand =
  | {
    kind: "dispatch";
    name: string;
    pipeline: GPUComputePipeline;
    bindGroup: GPUBindGroup;
    grid: [number, number, number];
  }
  | { kind: "clear"; buffer: GPUBuffer; offset: number; size: number }
  | {
    kind: "copy";
    src: GPUBuffer;
    srcOffset: number;
    dst: GPUBuffer;
    dstOffset: number;
    size: number;
  }
  | { kind: "host"; fn: () => void };

export class Graph {
  #disposed = false;

  constructor(
    readonly commands: readonly GraphCommand[],
    readonly buffers: readonly PooledBuffer[],
    /** Upload buffers holding the graph's constants. */
    readonly staging: readonly GPUBuffer[],
    readonly rt: Runtime,
  ) {
    for (const b of buffers) rt.pool.pin(b);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  get dispatches(): number {
    return this.commands.filter((c) => c.kind === "dispatch").length;
  }

  /** Unpins the graph's buffers (back to the pool once their tensors are released). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const b of this.buffers) this.rt.pool.unpin(b);
    // Recorded commands may still read the constants: free them once the GPU is done.
    if (!this.staging.length) return;
    this.rt.flush();
    const staging = this.staging;
    this.rt.device.queue.onSubmittedWorkDone().then(() => staging.forEach((s) => s.destroy()));
  }
}

/**
 * Captured steps by key (batch size, whether the optimiser updates): the first call of a key
 * captures, later calls replay. A key is captured again when its input tensor moved to
 * another buffer (a renderer re-allocated for another batch shape), and the old graph is
 * disposed, so the cache never holds more than one graph per key.
 */
export class StepGraphs {
  #graphs = new Map<string, { graph: Graph; inputs: string }>();

  constructor(readonly rt: Runtime) {}

  run(key: string, inputs: Tensor | Tensor[], body: () => void): void {
    if (!this.rt.replaySteps) return body();
    const ids = [inputs].flat().map((t) => t.storage.buf.id).join(",");
    const e = this.#graphs.get(key);
    if (e && e.inputs === ids) return this.rt.replay(e.graph);
    e?.graph.dispose();
    const { graph } = this.rt.capture(body);
    this.#graphs.set(key, { graph, inputs: ids });
  }

  dispose(): void {
    for (const e of this.#graphs.values()) e.graph.dispose();
    this.#graphs.clear();
  }
}
