#!/usr/bin/env bash
# The study's Table 1 as a shell loop: one `heatformer train --json` per row, the summaries
# collected into one table. Defaults run the CPU-sized presets on the built-in dataset
# (minutes each on a CPU). With NTU60 converted (README), the study's rows, one experiment file
# each in configs/study/ntu60/ (each names its preset, input and recipe; DATA overrides the
# file's data.path):
#   DATA=ntu60_2d.arrow STUDY=1 examples/ablate.sh
# DRY=1 prints every row's resolved model, input, recipe and the time it would take here
# (train --dry-run), and trains nothing. EPOCHS=N shortens every row; EXTRA adds flags to
# every row, e.g. EXTRA="--f16 --seed 2". The rows' report is written to $OUT/report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-deno}
OUT=${OUT:-runs/ablate}
mkdir -p "$OUT"
read -r -a extra <<<"${EXTRA:-}"
data=()
[ -n "${DATA:-}" ] && data=(--data "$DATA")
[ -n "${SPLIT:-}" ] && data+=(--split "$SPLIT")
epochs=()
[ -n "${EPOCHS:-}" ] && epochs=(--epochs "$EPOCHS")

# Rows: preset, input, and the recipe when it is not the preset's ("+aug": the study's
# augmentation variant of the preset's recipe).
if [ -n "${STUDY:-}" ]; then
  rows=()
  for f in configs/study/ntu60/*.json; do rows+=("config $f"); done
else
  [ -z "${EPOCHS:-}" ] && epochs=(--epochs 8)
  rows=(
    "vanilla-tiny heatmap" "vanilla-tiny kp2d" "vanilla-tiny kp3d" "vanilla-tiny heatmap cpu+aug"
    "vivit-m1-tiny heatmap" "vivit-m2-tiny heatmap"
    "motionbert-tiny heatmap" "motionbert-tiny kp2d"
  )
fi

runs=()
for row in "${rows[@]}"; do
  read -r model input recipe <<<"$row"
  flags=(--model "$model" --input "$input")
  tag="${model}-${input}"
  if [ "$model" = config ]; then
    flags=(--config "$input")
    tag=$(basename "$input" .json)
  elif [ -n "${recipe:-}" ]; then
    flags+=(--recipe "$recipe")
    [[ $recipe == *+aug ]] && tag="${model}+aug-${input}"
  fi
  echo "== $tag" >&2
  if [ -n "${DRY:-}" ]; then
    "$DENO" run -A train.ts "${flags[@]}" "${epochs[@]}" "${data[@]}" "${extra[@]}" \
      --dry-run --json >"$OUT/$tag.dry.json" || echo "{\"failed\": \"$tag\"}" >"$OUT/$tag.dry.json"
    continue
  fi
  if "$DENO" run -A train.ts "${flags[@]}" "${epochs[@]}" "${data[@]}" "${extra[@]}" \
    --out "$OUT/$tag" --force --json >"$OUT/$tag.json"; then
    runs+=("$OUT/$tag")
  else
    echo "{\"failed\": \"$tag\"}" >"$OUT/$tag.json"
  fi
done

# One table from the summaries (or the dry runs).
"$DENO" eval '
  const [dir, dry] = Deno.args;
  const suffix = dry ? ".dry.json" : ".json";
  const files = [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.endsWith(suffix) && (dry || !n.endsWith(".dry.json"))).sort();
  const h = (s) => s < 120 ? `${s.toFixed(0)} s` : s < 7200 ? `${(s / 60).toFixed(0)} min` : `${(s / 3600).toFixed(1)} h`;
  if (dry) {
    console.log("| model | input | recipe | params (Table 2) | GFLOPs | shape | batch | epochs | ms/step | peak GPU | epoch | run |");
    console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  } else {
    console.log("| model | input | params | top-1 | top-5 | samples/s |");
    console.log("|---|---|---|---|---|---|");
  }
  for (const name of files) {
    const s = JSON.parse(Deno.readTextFileSync(`${dir}/${name}`));
    const [model, input] = name.slice(0, -suffix.length).split(/-(?=heatmap|kp2d|kp3d)/);
    if (s.failed) { console.log(`| ${model} | ${input} | failed |`); continue; }
    if (dry) {
      const c = s.config, study = s.studyParameters ? ` (${(s.studyParameters / 1e6).toFixed(1)}M)` : "";
      console.log(`| ${model} | ${input} | ${s.recipe} | ${(s.parameters / 1e6).toFixed(2)}M${study} | ${s.gflopsPerSample.toFixed(2)} | ${s.input.shape.join("x")} | ${c.batchSize} | ${c.epochs} | ${s.msPerStep.toFixed(0)} | ${(s.peakGpuBytes / 2 ** 20).toFixed(0)} MiB | ${h(s.estimate.epochSeconds)} | ${h(s.estimate.runSeconds)} |`);
    } else {
      console.log(`| ${model} | ${input} | ${(s.parameters / 1e6).toFixed(2)}M | ${(s.final.top1 * 100).toFixed(1)} | ${(s.final.top5 * 100).toFixed(1)} | ${s.samplesPerSec.toFixed(0)} |`);
    }
  }
' "$OUT" "${DRY:-}" | tee "$OUT/table${DRY:+.dry}.md"

# The rows side by side in one HTML page (curves overlaid, configurations compared).
if [ -z "${DRY:-}" ] && [ "${#runs[@]}" -gt 0 ]; then
  "$DENO" run -A main.ts report "${runs[@]}" -o "$OUT/report.html" >&2
fi
