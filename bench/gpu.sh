#!/usr/bin/env bash
# One visit to a GPU measures everything issue #18 asks for, in at most 8 minutes, into $OUT:
# gpu.json (adapter, kernels, every preset's step in heatformer f32 / f16 and in PyTorch fp32 /
# tf32 / bf16 with the ratios) and gpu.log. Carries or finds what it needs:
#   - Deno: on PATH, else ./.deno/deno (copy the binary there and carry ".deno");
#   - the Vulkan loader: the .gl debs of the device README, unpacked when libvulkan is missing;
#   - PyTorch: the machine's python3.
#   OUT=/tmp/out bench/gpu.sh
#   STUDY=0 TIMEOUT_SCALE=10 PYTHON=/usr/bin/python3 bench/gpu.sh   # tiny presets: a check on a CPU
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out}
mkdir -p "$OUT/raw"
exec > >(tee "$OUT/gpu.log") 2>&1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
DENO=${DENO:-$(command -v deno || echo "$PWD/.deno/deno")}
if ! ldconfig -p 2>/dev/null | grep -q libvulkan && [ -d .gl ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
NV_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$NV_ICD" ] && export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$NV_ICD}
PYTHON=${PYTHON:-python3}
SCALE=${TIMEOUT_SCALE:-1} # a software adapter needs longer: TIMEOUT_SCALE=10
hf() { timeout $(($1 * SCALE)) "$DENO" run -A main.ts "${@:2}"; }

STUDY_PRESETS=vanilla,vanilla-big,vivit-m1,vivit-m1-big,vivit-m1-small-tubelet,vivit-m2,motionbert
TINY_PRESETS=vanilla-tiny,vivit-m1-tiny,vivit-m2-tiny,motionbert-tiny
if [ -z "${PRESETS:-}" ]; then
  PRESETS=$TINY_PRESETS
  [ "${STUDY:-1}" != 0 ] && PRESETS=$STUDY_PRESETS,$TINY_PRESETS
fi

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv
"$DENO" --version | head -1
hf 60 info --json >"$OUT/raw/info.json" || echo "gpu.sh: info failed"
hf 60 models --json >"$OUT/raw/models.json"
hf 120 bench kernels --json >"$OUT/raw/kernels.json" || echo "gpu.sh: bench kernels failed"
for b in 16 32; do
  hf 150 bench train --json --no-peers --models "$PRESETS" --batch "$b" >"$OUT/raw/train-f32-$b.json" ||
    echo "gpu.sh: bench train f32 batch $b failed"
done
hf 120 bench train --json --no-peers --f16 --models "$PRESETS" --batch 16 >"$OUT/raw/train-f16-16.json" ||
  echo "gpu.sh: bench train f16 failed (no shader-f16?)"
timeout $((150 * SCALE)) "$PYTHON" bench/peers/torch_train.py --models "$OUT/raw/models.json" --only "$PRESETS" \
  --batch 16,32 --out "$OUT/raw/torch.json" || echo "gpu.sh: the PyTorch peer failed"
"$DENO" run -A bench/compare.ts "$OUT/raw" "$OUT/gpu.json"
rm -rf "$OUT/raw"
