// Merges bench/gpu.sh's raw JSON files into one report and prints the table of issue #18: every
// preset's training step in heatformer (f32, f16) beside PyTorch (fp32 without TF32, tf32, bf16)
// on the same machine and batch, with ms/step, samples/s, TFLOP/s and PyTorch / heatformer.
//   deno run -A bench/compare.ts RAW_DIR OUT.json
const [dir, out] = Deno.args;
const read = (name: string) => {
  try {
    return JSON.parse(Deno.readTextFileSync(`${dir}/${name}`));
  } catch {
    return null;
  }
};
type Step = { name: string; batch: number; msPerStep: number; gflops?: number };
/** bench train names a preset's step "NAME (B16, shape)". */
const preset = (name: string) => name.replace(/ \(.*\)$/, "").replace(/ f16$/, "");
// One file per mode, batch and preset (train-f32-16-vanilla.json), or per mode and batch for all
// presets (train-f32-16.json); each holds the reference step too: the first one is kept.
const ours: { mode: string; batch: number; steps: Step[] }[] = [];
for (const e of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
  const m = e.name.match(/^train-(f32|f16)-(\d+)(-.*)?\.json$/);
  const r = m && read(e.name);
  if (!m || !r?.results) continue;
  const [mode, batch] = [m[1], Number(m[2])];
  let o = ours.find((x) => x.mode === mode && x.batch === batch);
  if (!o) ours.push(o = { mode, batch, steps: [] });
  for (const s of r.results as Step[]) {
    const seen = o.steps.some((x) => preset(x.name) === preset(s.name) && x.batch === s.batch);
    if (!seen) o.steps.push(s);
  }
}
const torch = read("torch.json");
type Row = { model: string; batch: number; mode: string; msPerStep?: number; error?: string };
const peer = (model: string, batch: number, mode: string) =>
  (torch?.rows ?? []).find((r: Row) => r.model === model && r.batch === batch && r.mode === mode);
const table: Record<string, unknown>[] = [];
for (const o of ours.filter((o) => o.mode === "f32")) {
  for (const s of o.steps) {
    if (table.some((r) => r.model === preset(s.name) && r.batch === s.batch)) continue;
    const f16 = ours.find((x) => x.mode === "f16" && x.batch === o.batch)?.steps
      .find((x) => preset(x.name) === preset(s.name) && x.batch === s.batch);
    const row: Record<string, unknown> = {
      model: preset(s.name),
      batch: s.batch,
      heatformerF32Ms: s.msPerStep,
      heatformerF16Ms: f16?.msPerStep ?? null,
      samplesPerSec: (s.batch * 1000) / s.msPerStep,
      tflops: s.gflops ? s.gflops / 1000 : null,
    };
    for (const mode of ["fp32", "tf32", "bf16"]) {
      const p = peer(preset(s.name), s.batch, mode);
      row[`torch_${mode}Ms`] = p?.msPerStep ?? null;
      // above 1: heatformer is faster
      row[`ratio_${mode}`] = p?.msPerStep ? p.msPerStep / s.msPerStep : null;
    }
    table.push(row);
  }
}
const report = {
  info: read("info.json"),
  kernels: read("kernels.json"),
  torch: torch ? { version: torch.torch, device: torch.device, sdpa: torch.sdpa } : null,
  table,
  raw: { heatformer: ours, torch: torch?.rows ?? [] },
};
Deno.writeTextFileSync(out, JSON.stringify(report, null, 2));
const f = (v: unknown, d = 1) => typeof v === "number" ? v.toFixed(d) : "-";
console.log(
  "| preset | batch | heatformer f32 ms | f16 ms | TFLOP/s | torch fp32 ms | tf32 ms | bf16 ms | " +
    "fp32/ours | tf32/ours | bf16/ours |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of table) {
  console.log(
    `| ${r.model} | ${r.batch} | ${f(r.heatformerF32Ms)} | ${f(r.heatformerF16Ms)} | ${
      f(r.tflops, 2)
    } | ${f(r.torch_fp32Ms)} | ${f(r.torch_tf32Ms)} | ${f(r.torch_bf16Ms)} | ${
      f(r.ratio_fp32, 2)
    } | ${f(r.ratio_tf32, 2)} | ${f(r.ratio_bf16, 2)} |`,
  );
}
const k = report.kernels;
if (k) console.log(`adapter ${k.adapter?.name}: FMA peak ${f(k.peakGflops, 0)} GFLOP/s`);
