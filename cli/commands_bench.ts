// `heatformer bench kernels | train | data`: benchmarks, not tests. bench/ and its peers
// (TensorFlow.js, jax-js) are imported when a bench command runs: with deno.json's
// lazy-dynamic-imports and npm-lazy-caching, nothing else downloads them.
import type { Command } from "commander";
import { Runtime } from "../runtime/runtime.ts";
import { parseIntList, printJson, runCommand } from "./output.ts";

type Opts = Record<string, string | boolean | undefined>;
type Log = ((line: string) => void) | undefined;

/** A bench command's action: a runtime, the benchmark, its report (with --json, as JSON). */
function benchAction(
  run: (rt: Runtime, o: Opts, log: Log) => Promise<object>,
): (o: Opts) => Promise<void> {
  return (o) =>
    runCommand(async () => {
      const rt = await Runtime.create();
      const report = await run(rt, o, o.json ? undefined : (l) => console.log(l));
      if (o.json) printJson({ adapter: rt.gpu.description, ...report });
      else console.log(`adapter: ${rt.gpu.description.name} (${rt.gpu.description.backend})`);
    }, o);
}

/** bench kernels, train, data. */
export function addBenchCommands(program: Command): void {
  const bench = program.command("bench").description(
    "benchmarks (not tests): GFLOP/s, samples/s, peers",
  );
  bench.command("kernels")
    .description("FMA peak, matmul, attention, tubelet embedding, and TensorFlow.js WebGPU matmul")
    .option("--json", "print one JSON object")
    .option("--sizes <list>", "matmul sizes", "256,512,1024,2048")
    .option("--lengths <list>", "attention sequence lengths", "64,256,1024")
    .option("--no-peers", "skip TensorFlow.js")
    .option("--f16", "f16 storage, f32 accumulation (matmul, attention)")
    .option("--min-ms <ms>", "minimum timed duration per measurement", "300")
    .action(benchAction(async (rt, o, log) => {
      const { benchKernels } = await import("../bench/kernels.ts");
      return await benchKernels(rt, {
        matmulSizes: parseIntList("--sizes", String(o.sizes)),
        attentionLengths: parseIntList("--lengths", String(o.lengths)),
        peers: !!o.peers,
        f16: !!o.f16,
        minMs: Number(o.minMs),
        log,
      });
    }));
  bench.command("train")
    .description(
      "training-step time and samples/s: the reference step and each family's tiny preset",
    )
    .option("--json", "print one JSON object")
    .option("--f16", "mixed precision (train --f16) for heatformer's steps")
    .option("--no-peers", "skip the TensorFlow.js and jax-js peers")
    .option("--profile", "time each kernel of the reference step (replayed alone)")
    .option("--no-presets", "only the reference step (and its peers)")
    .option("--models <list>", "presets to time (default: the four *-tiny ones)")
    .option("--batch <n>", "samples per preset step", "16")
    .action(benchAction(async (rt, o, log) => {
      const { benchTrain } = await import("../bench/train.ts");
      return await benchTrain(rt, {
        peers: !!o.peers,
        profile: !!o.profile,
        presets: !!o.presets,
        models: o.models ? String(o.models).split(",").map((m) => m.trim()) : undefined,
        batch: parseIntList("--batch", String(o.batch))[0],
        f16: !!o.f16,
        log,
      });
    }));
  bench.command("data")
    .description(
      "Arrow read rate, host pipeline rate, GPU vs CPU heatmap volumes/s, and pose frames/s " +
        "end to end (decode + MoveNet + tracking) for Lightning, Thunder and MultiPose",
    )
    .option("--json", "print one JSON object")
    .option("--batch <n>", "heatmap volumes per GPU dispatch", "8")
    .option("--video <file>", "the video the pose models run on (default: opencv-doc's vtest.avi)")
    .option("--pose-frames <n>", "frames timed per pose model, after 3 warm-up frames", "40")
    .option("--no-poses", "skip the pose models")
    .action(benchAction(async (rt, o, log) => {
      const { benchData } = await import("../bench/data.ts");
      const report = await benchData(rt, { batch: Number(o.batch), log });
      if (!o.poses) return report;
      const { benchPoses, SAMPLE_VIDEO } = await import("../bench/poses.ts");
      const video = o.video ? String(o.video) : SAMPLE_VIDEO;
      const frames = parseIntList("--pose-frames", String(o.poseFrames))[0];
      return { ...report, poses: await benchPoses({ video, frames, log }) };
    }));
}
