#!/usr/bin/env bash
# README command (a): install everything, then the main job on the embedded default data (no download):
# train the seed-000 Essen LSTM briefly, sample melodies to MIDI + WAV, and evaluate them against held-out
# Erk songs. About 3-6 minutes on 2 CPU cores (the first music21 parse of the corpus is ~1.5 min, then cached).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-400}
OUT=${OUT:-demo}
bash scripts/setup.sh
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$HOME/.cache/tunesmith/numba}" MPLBACKEND=Agg
rm -rf "$OUT"
tunesmith datasets
tunesmith train configs/essen_lstm.toml --max-steps "$STEPS" --out "$OUT/run"
tunesmith sample "$OUT/run" --primer "60 _ 62 _ 64 _ 65 _" --num 8 --wav --seed 0 --out "$OUT/samples"
if python3 -c "import tunesmith.evaluation.report" 2>/dev/null; then
  tunesmith evaluate "$OUT/samples" --reference essen-erk:val --out "$OUT/report"
  echo "report: $OUT/report/report.html"
fi
echo "melodies: $OUT/samples/*.mid and *.wav; training curves: $OUT/run/losses.png"
