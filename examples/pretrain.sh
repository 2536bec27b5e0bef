#!/usr/bin/env bash
# Pretraining the CPU-sized DSTformer with MotionBERT's task on NW-UCLA's 3D skeletons (all
# 1,484 sequences, in H36M's joint order: noisy, masked 2D views in, the 3D motion out), then
# the small-data sweep that measures what it is worth: Penn Action with 10% and 25% of its
# training clips, from a random start or from the encoder (configs/sweeps/penn-pretrained.json;
# results in docs/pretraining.md). The encoder after 30 epochs is kept apart, then the same run
# is extended to 90 (an exponential schedule: the first 30 epochs are those of the 30-epoch run).
#
#   examples/pretrain.sh           # about 25 minutes of pretraining, 60 of fine-tuning (2 CPU cores)
#   NW_UCLA=/path/to/nw-ucla PENN_ACTION=/path/penn_action_coco17.pkl examples/pretrain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-deno}
NW_UCLA=${NW_UCLA:-../shared/datasets/nw-ucla}
PENN_ACTION=${PENN_ACTION:-../shared/datasets/penn-action/penn_action_coco17.pkl}
hf() { "$DENO" run -A main.ts "$@"; }

mkdir -p runs/nwucla runs/pretrain runs/penn
[ -f runs/nwucla/nwucla.arrow ] || hf convert nw-ucla "$NW_UCLA" -o runs/nwucla/nwucla.arrow >&2
[ -f runs/penn/penn.arrow ] || hf convert pyskl "$PENN_ACTION" \
  --classes examples/penn_action_classes.txt -o runs/penn/penn.arrow >&2

# 30 epochs, kept; then the same run extended to 90 (finished runs are left as they are)
pretrain() {
  local out=$1 epochs=$2
  if [ -f "$out/config.json" ]; then hf pretrain --resume "$out" --epochs "$epochs" >&2
  else
    hf pretrain --data runs/nwucla/nwucla.arrow --split train+val:val --eval-every 5 \
      --epochs "$epochs" --out "$out" >&2
  fi
}
pretrain runs/pretrain/nwucla-30 30
[ -d runs/pretrain/nwucla-90 ] || cp -r runs/pretrain/nwucla-30 runs/pretrain/nwucla-90
pretrain runs/pretrain/nwucla-90 90

hf sweep run configs/sweeps/penn-pretrained.json --local 1 >&2
hf sweep report runs/sweeps/penn-pretrained --json
