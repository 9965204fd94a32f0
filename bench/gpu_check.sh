#!/usr/bin/env bash
# The GPU checks of issue 12 in one go (about 6 minutes on one H100/H200): training throughput against the
# model's own speed, then the study at full scale (8,000 crops x 30 epochs x three models). Figures go to
# stdout and to $OUT (or ./bench-gpu) as text and JSON, for the README.
#
#   bench/gpu_check.sh            # on a machine with CUDA
#   bench/gpu_check.sh --cpu      # the same script, tiny sizes, on a CPU (checks that it runs; figures mean nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=${OUT:-bench-gpu}
mkdir -p "$OUT"
export PYTHONPATH=.

if [ "${1:-}" = "--cpu" ]; then
  TRAIN=(--device cpu --models squeezenet1_1 --size 32 --images 64 --batch-size 32 --epochs 1 --repeats 1
         --min-seconds 0.5)
  STUDY=(--device cpu --models squeezenet1_1 --hands 4 --frames 5 --epochs 1 --size 32 --batch-size 16)
else
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA here: run with --cpu')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
  # 8,192 crops x 3 epochs per model, alternating with the bare model step: ~1 min for the three models.
  TRAIN=(--device cuda --repeats 2 --json)
  # Full scale: the goal is < 3 min for the three models back to back.
  STUDY=(--device cuda)
fi

"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee "$OUT/versions.txt"
echo "== bench_training ==" | tee "$OUT/bench_training.txt"
timeout 240 "$PY" bench/bench_training.py "${TRAIN[@]}" 2>&1 | tee -a "$OUT/bench_training.txt"
echo "== bench_study ==" | tee "$OUT/bench_study.txt"
timeout 360 "$PY" bench/bench_study.py "${STUDY[@]}" 2>&1 | tee -a "$OUT/bench_study.txt"
