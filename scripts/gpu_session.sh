#!/usr/bin/env bash
# One device call's worth of GPU checks (docs/training.md "GPU tier"): run from the project root on a CUDA machine
# after `bash ../shared/gpu/prepare.sh` and `bash scripts/gpu_lite_cache.sh` here, carrying .whl and .gpu-lite:
#   bash scripts/gpu_session.sh            (OUT=folder for the results; default ./gpu-out)
# Phase 1 (alone on the GPU, so the timings are clean): benchmarks/bench_lstm.py and bench_transformer.py.
# Phase 2 (together): `pytest -m gpu` over every config (xdist), the conditioned Transformer trained longer
# (configs/essen_transformer_cond_gpu.toml) and melody-VAE variants, each stopped by SIGTERM at its time limit
# (the trainer checkpoints at the step boundary). Phase 3: scores and card figures of what was trained.
# Every phase has its own time limit, so the whole script ends within ~${BUDGET:-420} s; results go to $OUT.
set -u
OUT=${OUT:-$PWD/gpu-out}
B=${BUDGET:-420}                       # seconds the whole script may take
T0=$(date +%s)
left() { echo $(( B - ($(date +%s) - T0) )); }
L=runs/gpu/logs                          # logs and figures; packed into $OUT/logs.tgz at the end ($OUT takes 8 files)
mkdir -p "$OUT" "$L"
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/timeline.txt"; }

if [ -z "${SKIP_PIP:-}" ] && [ -d .whl ] && [ ! -f .site/.ok ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target .site .whl/*.whl >"$L/pip.txt" 2>&1 \
    || { log "pip install failed"; tail -5 "$L/pip.txt"; exit 3; }
  touch .site/.ok
fi
export PYTHONPATH=$PWD/.site:$PWD/src TUNESMITH_CACHE=${TUNESMITH_CACHE:-$PWD/.gpu-lite} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
DEV=${DEV:-cuda}
ts() { python3 -m tunesmith.cli "$@"; }
nvidia-smi >"$L/nvidia-smi.txt" 2>&1
python3 -c "import torch, tunesmith; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
  torch.cuda.get_device_name() if torch.cuda.is_available() else '')" 2>&1 | tee -a "$L/timeline.txt" \
  || { log "import failed"; exit 4; }
log "start (budget ${B}s)"

# ---- phase 1: benchmarks, alone
S=${BENCH_S:-75}
timeout -s TERM "$S" python3 benchmarks/bench_lstm.py --device "$DEV" --corpus none --steps 300 \
  >"$L/bench_lstm.txt" 2>&1; log "bench_lstm rc=$?"
timeout -s TERM 45 python3 benchmarks/bench_transformer.py --device "$DEV" --run zoo:essen-transformer \
  >"$L/bench_transformer.txt" 2>&1; log "bench_transformer rc=$?"
cp benchmarks/results/*_"$DEV".json "$L/" 2>/dev/null

# ---- phase 2: tests and training together
P=$(( $(left) - ${MEASURE_S:-75} ))          # what phase 2 may take
log "phase 2: ${P}s"
# -v: with xdist each result is printed as "[gwN] PASSED/FAILED test-id" when it finishes, so the names survive a
# time-out (the first session's pytest was stopped before its summary: 12 F's without names); --tb=line keeps
# every failure's one-line reason in the same log as it happens (-x would hide the others).
( timeout -s TERM "$P" python3 -m pytest -m gpu tests/test_gpu.py $( [ "${XDIST:-6}" != 0 ] && echo "-n ${XDIST:-6}" ) \
    -p no:cacheprovider -p no:benchmark -v --tb=line -rfE --junitxml="$L/pytest_gpu.xml" >"$L/pytest_gpu.txt" 2>&1
  log "pytest -m gpu rc=$?" ) &
TRAIN_S=$(( P - 15 ))
( timeout -s TERM "$TRAIN_S" python3 -m tunesmith.cli train configs/essen_transformer_cond_gpu.toml \
    --out runs/gpu/transformer --device "$DEV" --quiet >"$L/train_transformer.txt" 2>&1
  log "transformer train rc=$?" ) &
# melody VAE: the AR recipe as it is (its GPU time) and variants with more free bits / lower beta (issue 12)
for v in ${VAE_VARIANTS:-ar fb160 fb256 fb160b05}; do
  cfg=runs/gpu/vae_$v.toml
  python3 - "$v" "$cfg" <<'PY'
import re, sys
v, out = sys.argv[1], sys.argv[2]
t = open("configs/melody_vae_4bar_ar_lrdecay.toml").read()
fb = {"fb160": 160.0, "fb256": 256.0, "fb160b05": 160.0}.get(v)
if fb:
    t = re.sub(r"free_bits = [0-9.]+", f"free_bits = {fb}", t)
if v.endswith("b05"):
    t = re.sub(r"beta = [0-9.]+", "beta = 0.05", t)
t = t.replace('name = "melody_vae_4bar_ar_lrdecay"', f'name = "melody_vae_4bar_gpu_{v}"')
open(out, "w").write(t)
PY
  ( timeout -s TERM "$TRAIN_S" python3 -m tunesmith.cli train "$cfg" --out "runs/gpu/vae_$v" --device "$DEV" --quiet \
      >"$L/train_vae_$v.txt" 2>&1; log "vae $v train rc=$?" ) &
done
wait
log "phase 2 done"

# ---- phase 3: figures of what was trained (CPU, in parallel)
M=$(( $(left) - 10 ))
( timeout -s TERM "$M" python3 -m tunesmith.cli score runs/gpu/transformer essen-erk:val --device "$DEV" \
    --out "$L/score_transformer" >"$L/score_transformer.txt" 2>&1; log "score rc=$?" ) &
for v in ${VAE_VARIANTS:-ar fb160 fb256 fb160b05}; do
  ( timeout -s TERM "$M" python3 -c "
import json, sys
from tunesmith.zoo.measure import measure
r = measure('runs/gpu/vae_$v')
json.dump(r, open('$L/measure_vae_$v.json', 'w'), indent=1, default=str); print(r)
" >"$L/measure_vae_$v.txt" 2>&1; log "measure vae $v rc=$?" ) &
done
wait
# logs, figures and the trained runs (weights, config, curves; no optimizer state, no TensorBoard) come back
for d in runs/gpu/*/; do                  # one archive per run (each file must stay under 16 MB)
  tar czf "$OUT/$(basename "$d").tgz" --exclude='trainer.pt' --exclude='tensorboard' "$d"
done
log "done"
ls -la "$OUT"
