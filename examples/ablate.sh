#!/usr/bin/env bash
# Ablations as a sweep (README "Running the study on a cluster"): every family's CPU preset on
# the built-in dataset (configs/sweeps/cpu-families.json, minutes a run on a CPU), or with
# STUDY=1 the study's Table 1 on NTU60 (configs/study/ntu60-table1.json: 13 rows x 3 seeds),
# run here one at a time, then the table (mean ± std over seeds) printed and written beside
# the runs (report.md, report.csv, report.html).
#   examples/ablate.sh                                   # the CPU presets
#   DATA=ntu60_2d.arrow STUDY=1 examples/ablate.sh       # the study's rows (NTU60 converted)
#   STUDY=1 SLURM=1 examples/ablate.sh                   # the same as a Slurm job array
# DRY=1 lists the runs with each one's estimated time here (train --dry-run) and trains
# nothing. EPOCHS=N shortens every run; EXTRA adds train flags to every run.
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-deno}
SWEEP=configs/sweeps/cpu-families.json
[ -n "${STUDY:-}" ] && SWEEP=configs/study/ntu60-table1.json
flags="${EXTRA:-}"
[ -n "${DATA:-}" ] && flags="$flags --data $DATA"
[ -n "${EPOCHS:-}" ] && flags="$flags --epochs $EPOCHS"
out=()
[ -n "${OUT:-}" ] && out=(--out "$OUT")
hf() { "$DENO" run -A main.ts "$@"; }

if [ -n "${DRY:-}" ]; then
  exec "$DENO" run -A main.ts sweep plan "$SWEEP" "${out[@]}" --flags "$flags" --estimate
fi
if [ -n "${SLURM:-}" ]; then
  hf sweep run "$SWEEP" "${out[@]}" --flags "$flags" --slurm
  exit 0
fi
hf sweep run "$SWEEP" "${out[@]}" --flags "$flags" --local 1
dir=${OUT:-runs/sweeps/$(basename "$SWEEP" .json)}
hf sweep report "$dir"
