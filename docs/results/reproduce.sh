#!/usr/bin/env bash
# Reproduce every figure and CSV in docs/results/ (about 15 minutes on a 2-core CPU).
#   bash docs/results/reproduce.sh            # from the repository root
# Trains DyRCNNx4 on scikit-learn's digits (32 px, 10 steps), then runs the four
# protocols with its best checkpoint, the recurrence sweep, and the adaptation spec.
set -euo pipefail
OUT=docs/results
RUN=${RUN:-runs/x4-digits}
X4="specs/dyrcnn_x4.dyn"

if [ ! -f "$RUN/best.pt" ]; then
  dynv train "$X4" --data digits --set size=32 --set steps=10 --out "$RUN" --no-progress
fi
mkdir -p "$OUT/training"
cp "$RUN/metrics.csv" "$RUN/learning_curve.png" "$RUN/run.json" "$OUT/training/"

for name in duration contrast interval noise; do
  dynv experiment "$name" "$X4" --checkpoint "$RUN/best.pt" --out "$OUT/x4" --force
done
dynv experiment duration "$X4" --checkpoint "$RUN/best.pt" --sweep recurrence=none,self,full,local \
  --out "$OUT/recurrence_sweep" --force
# the adaptation spec with its seeded initial weights (seed 0), then trained on the digits
dynv experiment interval specs/adaptive_x4.dyn --set size=32 --set steps=10 --sweep w_a=0,1,3 \
  --out "$OUT/adaptation" --force
ARUN=${ARUN:-runs/adaptive-digits}
if [ ! -f "$ARUN/best.pt" ]; then
  dynv train specs/adaptive_x4.dyn --data digits --set size=32 --set steps=10 --out "$ARUN" --no-progress
fi
dynv experiment interval specs/adaptive_x4.dyn --checkpoint "$ARUN/best.pt" --sweep w_a=0,1,3 \
  --out "$OUT/adaptation_trained" --force

# The bounded model (docs/results/README.md, "The bounded model"): the lateral gain kept below
# 0.9 by its parametrisation and an activity penalty on the areas' outputs; then every
# protocol at once on its best checkpoint (x4_activity/).
SRUN=${SRUN:-runs/x4-digits-stable-act}
if [ ! -f "$SRUN/best.pt" ]; then
  dynv train "$X4" --data digits --set size=32 --set steps=10 --set recurrence_gain=0.9 \
    --activity-loss 0.1 --out "$SRUN" --no-progress
fi
mkdir -p "$OUT/x4_activity"
cp "$SRUN/metrics.csv" "$OUT/x4_activity/training_metrics.csv"
cp "$SRUN/learning_curve.png" "$OUT/x4_activity/learning_curve.png"
cp "$SRUN/run.json" "$OUT/x4_activity/training_run.json"
for name in interval contrast stability duration noise; do
  dynv experiment "$name" "$X4" --checkpoint "$SRUN/best.pt" --out "$OUT/x4_activity" --force
done
