// `heatformer import motionbert CKPT -o RUN` and `heatformer export motionbert RUN -o FILE.pt`:
// MotionBERT's official PyTorch checkpoints (pretraining `model_pos`, action `model`, with or
// without DataParallel's `module.`) as a heatformer run folder that eval, predict and
// train --init take, and a heatformer DSTformer back as an official state_dict.
import { join, resolve } from "node:path";
import { readClassNames } from "../data/classes.ts";
import { layoutJson } from "../data/layout_file.ts";
import { layoutByName } from "../data/layouts.ts";
import { readCheckpoint, saveCheckpoint } from "../io/checkpoint.ts";
import { readTorchCheckpoint, writeTorchStateDict } from "../io/torch_checkpoint.ts";
import type { DSTformer } from "../models/dstformer.ts";
import { officialArchitecture, officialState } from "../models/motionbert_import.ts";
import { loadOfficial, type StateTensor } from "../models/motionbert_names.ts";
import { buildModel } from "../models/presets.ts";
import { Runtime } from "../runtime/runtime.ts";
import { ConfigError, type Experiment } from "../training/experiment.ts";
import { readRunConfig, runConfigText } from "../training/experiment_file.ts";
import { resolveExperiment } from "../training/resolve.ts";
import { LAST } from "../training/run_folder.ts";
import { RunLock } from "../training/run_lock.ts";
import { inputSpecOf } from "../training/setup.ts";
import { positiveInt, printJson, UsageError } from "./output.ts";
import { checkOutputs } from "./writes.ts";

export interface ImportFlags {
  out: string;
  heads: string;
  classes?: string;
  frames?: string;
  force?: boolean;
  json?: boolean;
}

/** The imported run's experiment: motionbert-base with the checkpoint's shapes. */
function importedExperiment(mc: ReturnType<typeof officialArchitecture>["config"], out: string) {
  const { input, classes: _c, heatmapPersons: _h, ...model } = mc;
  return resolveExperiment([{
    origin: "import",
    layer: {
      model: { ...model, preset: "motionbert-base" },
      // its joints are H36M's: COCO-17 data (Penn Action, videos' poses) is read converted,
      // the scores left in COCO's order as MotionBERT's action pipeline leaves them
      data: { layout: "h36m17", layoutScores: "source" },
      input: { kind: "kp2d", clipLen: input.frames, persons: input.persons, sampling: "resample" },
      eval: { checkpoint: "last" },
      run: { out: resolve(out), recipe: "motionbert-finetune" },
    },
  }]);
}

async function classNames(spec: string | undefined, count: number): Promise<string[]> {
  const names = spec
    ? await readClassNames(spec)
    : count === 60 || count === 120
    ? await readClassNames(`ntu${count}`)
    : Array.from({ length: count }, (_, i) => `class ${i}`);
  if (names.length !== count) {
    throw new UsageError(`--classes: ${names.length} names for a head of ${count} classes`);
  }
  return names;
}

export async function importMotionbert(ckpt: string, o: ImportFlags): Promise<void> {
  const t = await readTorchCheckpoint(ckpt, { toFloat32: true });
  const state = t.tensors as unknown as Map<string, StateTensor>;
  const arch = officialArchitecture(state, ckpt, {
    heads: positiveInt("--heads", o.heads),
    classes: o.classes && /^\d+$/.test(o.classes) ? Number(o.classes) : undefined,
    frames: o.frames ? positiveInt("--frames", o.frames) : undefined,
  });
  const names = await classNames(
    o.classes && !/^\d+$/.test(o.classes) ? o.classes : undefined,
    arch.config.classes,
  );
  await checkOutputs({
    outputs: [join(o.out, "config.json")],
    inputs: [ckpt],
    force: o.force,
    flag: "--out",
  });
  const rt = await Runtime.create();
  const model = buildModel(rt, arch.config, 0) as DSTformer;
  const report = loadOfficial(model, state, { allowMissing: arch.hasHead ? [] : ["head."] });
  const { experiment, origins } = importedExperiment(arch.config, o.out);
  await Deno.mkdir(o.out, { recursive: true });
  const lock = await RunLock.acquire(o.out);
  try {
    await saveCheckpoint(rt, join(o.out, LAST), model, undefined, {
      preset: "motionbert-base",
      config: JSON.stringify(arch.config),
      input: JSON.stringify(inputSpecOf(experiment)),
      layout: JSON.stringify(layoutJson(layoutByName("h36m17"))),
      layout_scores: "source",
      classes: JSON.stringify(names),
      position: JSON.stringify({ epoch: 0, batch: 0, best: { epoch: -1, acc: -1 } }),
      imported: resolve(ckpt),
    });
    const record = { imported: resolve(ckpt), modelConfig: arch.config, report: summary(report) };
    await Deno.writeTextFile(
      join(o.out, "config.json"),
      runConfigText(experiment, origins, record),
    );
  } finally {
    lock.release();
  }
  const out = { run: o.out, format: t.format, architecture: arch.config, ...summary(report) };
  if (o.json) printJson(out);
  else {
    console.log(
      `${o.out}: MotionBERT d ${arch.config.width}, depth ${arch.config.depth}, ` +
        `${arch.config.heads} heads, ${arch.config.input.frames} frames, ` +
        `${arch.config.classes} classes${
          arch.hasHead ? "" : " (fresh head: a pretraining checkpoint)"
        }; ` +
        `missing ${report.missing.length}, unexpected ${report.unexpected.length}`,
    );
  }
}

function summary(r: ReturnType<typeof loadOfficial>) {
  return {
    missing: r.missing,
    unexpected: r.unexpected,
    mismatched: r.mismatched,
    ignored: r.ignored,
    trimmed: r.trimmed,
  };
}

/** A run folder's (or checkpoint's) DSTformer as an official ActionNet state_dict. */
export async function exportMotionbert(
  target: string,
  o: { out: string; force?: boolean; json?: boolean },
): Promise<void> {
  const isDir = (await Deno.stat(target).catch(() => null))?.isDirectory ?? false;
  let ckpt = target;
  if (isDir) {
    const e: Experiment | null = await readRunConfig(target).then((r) => r.experiment, () => null);
    ckpt = join(target, `${e?.eval.checkpoint ?? "last"}.safetensors`);
  }
  const st = await readCheckpoint(ckpt);
  const mc = JSON.parse(st.metadata.config ?? "null");
  if (mc?.family !== "motionbert" || mc.input?.kind === "heatmap") {
    throw new ConfigError(`${ckpt}: not a keypoint DSTformer (MotionBERT's export takes those)`);
  }
  await checkOutputs({ outputs: [o.out], inputs: [ckpt], force: o.force, flag: "--out" });
  const rt = await Runtime.create();
  const model = buildModel(rt, mc, 0) as DSTformer;
  const { loadCheckpoint } = await import("../io/checkpoint.ts");
  await loadCheckpoint(rt, ckpt, model);
  const state = await officialState(model, Number(st.metadata.optimizer_step ?? 0));
  await writeTorchStateDict(o.out, state);
  if (o.json) printJson({ out: o.out, tensors: state.size, from: ckpt });
  else {console.log(
      `${o.out}: ${state.size} tensors under MotionBERT's ActionNet keys, from ${ckpt}`,
    );}
}
