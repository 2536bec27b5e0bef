#!/usr/bin/env bash
# Penn Action (2,326 real sports videos, 15 classes, ground-truth 2D poses; official split
# 1,258 train / 1,068 test) with heatmap inputs, end to end: convert the shared pyskl pickle,
# train the heatmap streams, evaluate them with `heatformer eval` (10 clips + flipped views,
# probabilities averaged over views and streams), and print one JSON object last on stdout:
# the first stream's training summary (its run folder in "run", so its config.json can be
# reused on other data) with the evaluation beside it in "eval".
#
#   examples/penn_action.sh                        # about 25 minutes on 2 CPU cores (lavapipe)
#   PENN_ACTION=/path/penn_action_coco17.pkl OUT=runs/penn examples/penn_action.sh
#   STREAMS="joints frames keypoints" examples/penn_action.sh  # three streams (about 75 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-deno}
PENN_ACTION=${PENN_ACTION:-../shared/datasets/penn-action/penn_action_coco17.pkl}
OUT=${OUT:-runs/penn}
STREAMS=${STREAMS:-joints}
read -r -a extra <<<"${EXTRA:-}"
hf() { "$DENO" run -A main.ts "$@"; }

# The streams (docs/results.md, Penn Action), one experiment file each in configs/penn-action/:
# DSTformer on per-joint heatmap tokens (the default: 97.85% alone), the vanilla transformer on
# frame tokens of joint heatmaps (joint stem), and DSTformer on 2D keypoints
# (STREAMS="joints frames keypoints": 97.9%). Every stream is evaluated below, on its last
# epoch's weights with 10 clips + flip (the streams' probabilities averaged), so training skips
# its own final evaluation (--test-clips 1 --no-flip-test).
declare -A CONFIGS=(
  [frames]=configs/penn-action/vanilla-frames.json
  [joints]=configs/penn-action/dstformer-joints.json
  [keypoints]=configs/penn-action/dstformer-keypoints.json
)

mkdir -p "$OUT"
hf convert pyskl "$PENN_ACTION" --classes examples/penn_action_classes.txt \
  -o "$OUT/penn.arrow" >&2
hf inspect "$OUT/penn.arrow" >&2

runs=()
for stream in $STREAMS; do
  echo "== $stream: ${CONFIGS[$stream]}" >&2
  "$DENO" run -A train.ts --config "${CONFIGS[$stream]}" --data "$OUT/penn.arrow" \
    --test-clips 1 --no-flip-test "${extra[@]}" --out "$OUT/$stream" --force --json \
    >"$OUT/$stream.json"
  runs+=("$OUT/$stream")
done

others=$(IFS=,; echo "${runs[*]:1}")
ensemble=()
[ -n "$others" ] && ensemble=(--ensemble "$others")
hf eval "${runs[0]}" "${ensemble[@]}" --checkpoint last --clips 10 --flip --json >"$OUT/eval.json"

"$DENO" eval '
  const [summaryPath, evalPath] = Deno.args;
  const s = JSON.parse(Deno.readTextFileSync(summaryPath));
  const e = JSON.parse(Deno.readTextFileSync(evalPath));
  console.error(`Penn Action test top-1 ${(e.top1 * 100).toFixed(1)}% (${e.views} views` +
    `${e.ensemble ? `, ${e.ensemble.length} streams` : ""})`);
  const { confusion: _c, perClass, classes, ...rest } = e;
  const perClassNamed = Object.fromEntries(classes.map((c, i) => [c, perClass[i]]));
  console.log(JSON.stringify({ ...s, eval: { ...rest, perClass: perClassNamed } }, null, 2));
' "$OUT/$(basename "${runs[0]}").json" "$OUT/eval.json"
