#!/usr/bin/env bash
# The study's Table 1 as a shell loop: one `heatformer train --json` per row, the summaries
# collected into one table. Defaults run the CPU-sized presets on the built-in dataset
# (minutes each on a CPU); with NTU60 converted (see README), set
#   DATA=ntu60_2d.arrow SPLIT=ntu60-xsub STUDY=1
# to run the study's presets and shapes instead (a GPU is what those need). EXTRA adds flags to
# every row, e.g. EXTRA="--f16 --seed 2".
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-deno}
OUT=${OUT:-runs/ablate}
EPOCHS=${EPOCHS:-8}
mkdir -p "$OUT"
read -r -a extra <<<"${EXTRA:-}"
data=()
[ -n "${DATA:-}" ] && data=(--data "$DATA" --split "${SPLIT:-ntu60-xsub}")

if [ -n "${STUDY:-}" ]; then
  rows=(
    "motionbert kp2d" "motionbert kp3d" "motionbert heatmap" "motionbert+aug heatmap"
    "vivit-m1 heatmap" "vivit-m1-big heatmap" "vivit-m1-small-tubelet heatmap" "vivit-m2 heatmap"
    "vanilla kp2d" "vanilla kp3d" "vanilla heatmap" "vanilla-big heatmap" "vanilla-big+aug heatmap"
  )
  shape=(--clip-len 48 --size 56)
else
  rows=(
    "vanilla-tiny heatmap" "vanilla-tiny kp2d" "vanilla-tiny kp3d" "vanilla-tiny+aug heatmap"
    "vivit-m1-tiny heatmap" "vivit-m2-tiny heatmap"
    "motionbert-tiny heatmap" "motionbert-tiny kp2d"
  )
  shape=()
fi

for row in "${rows[@]}"; do
  read -r name input <<<"$row"
  model=${name%+aug}
  aug=()
  [ "$model" != "$name" ] && aug=(--rotation 10 --noise 0.01 --shift 4)
  clip=()
  [ -n "${STUDY:-}" ] && [[ $model == vivit* ]] && clip=(--clip-len 56)
  tag="${name}-${input}"
  echo "== $tag" >&2
  "$DENO" run -A train.ts --model "$model" --input "$input" --epochs "$EPOCHS" "${data[@]}" "${shape[@]}" "${clip[@]}" \
    "${aug[@]}" "${extra[@]}" --out "$OUT/$tag" --json >"$OUT/$tag.json" || echo "{\"failed\": \"$tag\"}" >"$OUT/$tag.json"
done

# One table from the summaries.
"$DENO" eval '
  const dir = Deno.args[0];
  console.log("| model | input | params | top-1 | top-5 | samples/s |");
  console.log("|---|---|---|---|---|---|");
  for (const e of [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".json")).sort((a, b) => a.name.localeCompare(b.name))) {
    const s = JSON.parse(Deno.readTextFileSync(`${dir}/${e.name}`));
    const [model, input] = e.name.replace(/\.json$/, "").split(/-(?=heatmap|kp2d|kp3d)/);
    if (s.failed) { console.log(`| ${model} | ${input} | failed | | | |`); continue; }
    console.log(`| ${model} | ${input} | ${(s.parameters / 1e6).toFixed(2)}M | ${(s.final.top1 * 100).toFixed(1)} | ${(s.final.top5 * 100).toFixed(1)} | ${s.samplesPerSec.toFixed(0)} |`);
  }
' "$OUT" | tee "$OUT/table.md"
