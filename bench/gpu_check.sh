#!/usr/bin/env bash
# The GPU checks of issue 12 §2 in one script (at most 9 minutes on one H100/H200, to fit one 10-minute device
# call: each part has its own time limit and prints as it goes, so a part that runs out still leaves its figures):
#   1. (b) the end-to-end training loop on the device-resident path against (a) the raw step (forward + backward
#      + optimizer on random tensors) of the same settings, batch 256, bf16, channels_last: loop/raw per model,
#      goal >= 0.85; and the raw step eager with the default and the fused optimizer.
#   2. (c) the three models trained concurrently (one process each) against back to back, and (d) the study
#      scale (8,000 crops x 30 epochs x 3 models) extrapolated from it, goal < 3 min.
#   3. (a) the raw step compiled (torch.compile, inductor) with the default and the fused optimizer, and (b)
#      the loop with the compiled step. Last, as compiling takes the longest.
# Figures go to stdout and to $OUT (or ./bench-gpu): one text file a part, JSON lines in them, for the README.
#
#   bench/gpu_check.sh            # on a machine with CUDA
#   bench/gpu_check.sh --smoke    # the same parts at tiny sizes on the CPU (checks that they run; no figures);
#                                 # parts 1 and 3 share one process there, as starting one costs more than its work
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=${OUT:-bench-gpu}
mkdir -p "$OUT"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1  # a part stopped at its time limit still shows what it printed

if [ "${1:-}" = "--smoke" ]; then
  COMMON=(--device cpu)
  TRAIN=(--models squeezenet1_1 --size 32 --images 32 --batch-size 16 --epochs 1 --repeats 1 --min-seconds 0.01
         --min-steps 2 --decode-files 8)
  COMPILED=(--compile-backend eager)  # traces the compiled path without minutes of CPU code generation
  STUDY=(--hands 2 --frames 3 --epochs 1 --size 32 --batch-size 8)
  LIMITS=(120 120 0)
  FIRST=(--loops default,compiled --variants eager,fused,compiled,compiled+fused "${COMPILED[@]}")
  export OMP_NUM_THREADS=1  # one thread a process: tiny steps on a shared CPU only lose to thread hand-offs
elif [ $# -eq 0 ]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA here: run with --smoke')" || exit 2
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
  COMMON=(--device cuda)
  TRAIN=(--repeats 2)  # 224 px, 8,192 training crops, batch 256, 3 epochs per fit
  # Most-asked-about first: EfficientNet-B0 gains the most from compiling.
  COMPILED=(--compile-backend inductor --models efficientnet_b0 mobilenetv2_100 squeezenet1_1 --repeats 1)
  STUDY=(--hands 16 --frames 100 --crops 8000 --epochs 3)
  LIMITS=(170 150 230)  # 550 s of parts; start-up and nvidia-smi take seconds
  FIRST=(--loops default --variants eager,fused)
else
  echo "usage: $0 [--smoke]" >&2
  exit 2
fi

failed=0
part() {  # part NAME LIMIT_S COMMAND...: run with a time limit, output to the terminal and $OUT/NAME.txt
  local name=$1 limit=$2
  shift 2
  echo "== $name ==" | tee "$OUT/$name.txt"
  timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$name.txt"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "== $name FAILED (exit $rc$([ "$rc" -eq 124 ] && echo ", over ${limit} s")) ==" | tee -a "$OUT/$name.txt"
    failed=1
  fi
}

part 1_loop_and_raw "${LIMITS[0]}" "$PY" bench/bench_training.py "${COMMON[@]}" "${TRAIN[@]}" "${FIRST[@]}" --json
part 2_study "${LIMITS[1]}" "$PY" bench/bench_study.py "${COMMON[@]}" "${STUDY[@]}" --concurrent --json
if [ "${LIMITS[2]}" -gt 0 ]; then
  part 3_compiled "${LIMITS[2]}" "$PY" bench/bench_training.py "${COMMON[@]}" "${TRAIN[@]}" "${COMPILED[@]}" \
    --loops compiled --variants compiled,compiled+fused --decode-files 16 --json
fi
exit $failed
