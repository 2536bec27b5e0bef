#!/usr/bin/env bash
# One visit to a GPU measures everything issue #18 asks for, within a deadline (DEADLINE
# seconds, default 450), into $OUT: gpu.json (adapter, kernels, every preset's step in heatformer
# f32 / f16 and in PyTorch fp32 / tf32 / bf16 with the ratios), gpu.log, and autotune.json (the
# kernel choices measured on this adapter). Each preset runs in its own process with its own
# timeout, most important first, so a slow one costs only itself; whatever finished is merged.
# Carries or finds what it needs:
#   - Deno: on PATH, else ./.deno/deno (copy the binary there and carry ".deno");
#   - the Vulkan loader: the .gl debs of the device README, unpacked when libvulkan is missing;
#   - PyTorch: the machine's python3.
#   OUT=/tmp/out bench/gpu.sh
#   STUDY=0 TIMEOUT_SCALE=10 PYTHON=/usr/bin/python3 SIZES=128 LENGTHS=64 bench/gpu.sh
#     (the tiny presets, small kernels: a check of the script on a CPU)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out}
mkdir -p "$OUT/raw"
exec > >(tee "$OUT/gpu.log") 2>&1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
export HEATFORMER_CACHE=${HEATFORMER_CACHE:-$PWD/.bench-cache}
DENO=${DENO:-$(command -v deno || echo "$PWD/.deno/deno")}
if ! ldconfig -p 2>/dev/null | grep -q libvulkan && [ -d .gl ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
NV_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$NV_ICD" ] && export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$NV_ICD}
PYTHON=${PYTHON:-python3}
SCALE=${TIMEOUT_SCALE:-1} # a software adapter needs longer: TIMEOUT_SCALE=10
END=$((SECONDS + ${DEADLINE:-450} * SCALE))
# run CAP_SECONDS CMD...: CMD under the smaller of its cap and the time left; false if none left
run() {
  local cap=$(($1 * SCALE)) left=$((END - SECONDS))
  ((left < 5)) && { echo "gpu.sh: deadline reached, skipped: ${*:2}" >&2; return 1; }
  timeout $((cap < left ? cap : left)) "${@:2}"
}
hf() { run "$1" "$DENO" run -A main.ts "${@:2}"; }

STUDY_PRESETS="vanilla vivit-m1 vivit-m2 motionbert vanilla-big vivit-m1-big vivit-m1-small-tubelet"
TINY_PRESETS="vanilla-tiny vivit-m1-tiny vivit-m2-tiny motionbert-tiny"
if [ -z "${PRESETS:-}" ]; then
  PRESETS=$TINY_PRESETS
  [ "${STUDY:-1}" != 0 ] && PRESETS="$STUDY_PRESETS $TINY_PRESETS"
fi
PRESETS=${PRESETS//,/ }

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv
"$DENO" --version | head -1
hf 60 info --json >"$OUT/raw/info.json" || echo "gpu.sh: info failed"
hf 60 models --json >"$OUT/raw/models.json"
hf 90 bench kernels --json --no-peers --min-ms 100 --sizes "${SIZES:-512,1024,2048,4096}" \
  --lengths "${LENGTHS:-64,256,1024}" >"$OUT/raw/kernels.json" ||
  echo "gpu.sh: bench kernels failed"
run 150 "$PYTHON" bench/peers/torch_train.py --models "$OUT/raw/models.json" --only "${PRESETS// /,}" \
  --batch 16,32 --out "$OUT/raw/torch.json" || echo "gpu.sh: the PyTorch peer failed"
# heatformer: each preset's f32 step at batch 16 (autotuning its kernels on first use), then
# batch 32 (reusing the answers), then f16 at batch 16.
for spec in "f32 16 75" "f32 32 45" "f16 16 45"; do
  read -r mode b cap <<<"$spec"
  flag=$([ "$mode" = f16 ] && echo --f16)
  for p in $PRESETS; do
    hf "$cap" bench train --json --no-peers $flag --models "$p" --batch "$b" \
      >"$OUT/raw/train-$mode-$b-$p.json" || echo "gpu.sh: bench train $mode batch $b $p failed"
  done
done
"$DENO" run -A bench/compare.ts "$OUT/raw" "$OUT/gpu.json"
[ -f "$HEATFORMER_CACHE/autotune.json" ] && cp "$HEATFORMER_CACHE/autotune.json" "$OUT/"
rm -rf "$OUT/raw"
echo "gpu.sh: done in ${SECONDS} s"
