#!/usr/bin/env bash
# One-command GPU check of the GPU tree-scan backends (compiled CUDA, Triton), sized for a 10-minute slot.
#
#   bash benchmarks/gpu_check.sh          # results in ${OUT:-gpu_results}/gpu_results.txt
#
# Installs nothing (torch must be importable). Builds the CUDA extension for the present card, runs
# the self-check of every GPU backend (python -m grootvl_core.ops.selfcheck: the table of backend,
# device, max error, pass/fail; a backend that disagrees with the reference fails this script), the
# GPU op tests for both backends (tests/ops/test_gpu_backends.py), the benchmarks
# benchmarks/ops_cuda.py (cuda and triton vs the published design at GrootV-T stage shapes, batch 1
# and 128) and benchmarks/models_cuda.py (GrootV-T inference and training-step images/s with each
# set of kernels), then the rest of tests/ops, then
# the bundled-model recipes trained a few steps on the GPU (tests/train, test_recipes_train_on_the_gpu;
# it needs the Debian data: copy /usr/share/datasets/fashion-mnist and /usr/share/games/fortunes
# to .device-data/ here and carry that folder, else the test reports itself skipped).
# Every step has a time limit and appends to the results file as it goes, so a step that runs
# out of time still leaves the earlier results. Exit status: 0 when every step passed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS_DIR="${OUT:-gpu_results}"
mkdir -p "$RESULTS_DIR"
RES="$RESULTS_DIR/gpu_results.txt"
LOGS="$(mktemp -d)"
: > "$RES"
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-570}  # whole script, seconds
STATUS=0

say() { echo "$*" | tee -a "$RES"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
# step NAME MAX_SECONDS CMD...: run with a limit (never more than what is left), log the tail
step() {
  local name=$1 max=$2; shift 2
  local lim; lim=$(left); (( lim > max )) && lim=$max
  if (( lim < 20 )); then say "== $name: SKIPPED (out of time)"; STATUS=1; return 1; fi
  say "== $name (limit ${lim}s)"
  local t0; t0=$(date +%s)
  timeout "$lim" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  say "   rc=$rc after $(( $(date +%s) - t0 ))s"
  (( rc != 0 )) && STATUS=1
  return $rc
}

export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
if ! python -c "import grootvl_core" 2>/dev/null; then
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' ')
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-${CAP:-9.0}}"
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"

say "# grootvl GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
say "# card: $(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>&1 | head -1)"
say "# $(python -c 'import sys, torch; print(f"python {sys.version.split()[0]}, torch {torch.__version__}, torch CUDA {torch.version.cuda}, cuda available {torch.cuda.is_available()}")' 2>&1)"
say "# nvcc: $(nvcc --version 2>/dev/null | tail -1 || echo 'not on PATH')"
say "# TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS"

# The benchmark's baseline extension and the CPU extension (used by the other op tests) compile
# in the background while the CUDA extension compiles; later steps find them in the build cache.
( timeout 300 python -c "import sys; sys.path.insert(0, 'benchmarks'); import ops_cuda; ops_cuda.load_published()" \
    > "$LOGS/baseline_build.log" 2>&1 ) &
BASELINE_PID=$!
( timeout 300 python -m grootvl_core.ops.build > "$LOGS/cpu_build.log" 2>&1 ) &
CPU_PID=$!

if step cuda_build 300 python -m grootvl_core.ops.build --cuda --verbose; then
  tail -n 2 "$LOGS/cuda_build.log" | tee -a "$RES"
else
  say "--- build log (errors) ---"
  grep -n -E "error|Error|FAILED" "$LOGS/cuda_build.log" | head -40 | tee -a "$RES"
  tail -n 20 "$LOGS/cuda_build.log" | tee -a "$RES"
fi

# every GPU backend against the reference; exits 1 when one that loads disagrees
step selfcheck 120 python -m grootvl_core.ops.selfcheck
cat "$LOGS/selfcheck.log" | tail -n 12 | tee -a "$RES"

# no -x here: one run should show every GPU failure; a hung kernel is reported by pytest-timeout
step test_gpu 240 python -m pytest tests/ops/test_gpu_backends.py tests/ops/test_backend_chain.py --maxfail=15 -q -rfE -p no:cacheprovider --timeout=120
tail -n 40 "$LOGS/test_gpu.log" | tee -a "$RES"

wait "$BASELINE_PID" 2>/dev/null || { say "--- baseline build log ---"; tail -n 20 "$LOGS/baseline_build.log" | tee -a "$RES"; }
step benchmark 300 python benchmarks/ops_cuda.py --batch "${BENCH_BATCH:-1,128}"
cat "$LOGS/benchmark.log" | tail -n 40 | tee -a "$RES"

step models 200 python benchmarks/models_cuda.py --batch "${MODEL_BATCH:-128}" --train-batch "${TRAIN_BATCH:-64}"
tail -n 20 "$LOGS/models.log" | tee -a "$RES"

step bench_bf16 120 python benchmarks/ops_cuda.py --batch 128 --dtype bfloat16 --stages 1,3
tail -n 12 "$LOGS/bench_bf16.log" | tee -a "$RES"

wait "$CPU_PID" 2>/dev/null
step test_ops_rest 120 python -m pytest tests/ops -x -q -rfE -p no:cacheprovider --ignore=tests/ops/test_gpu_backends.py --ignore=tests/ops/test_backend_chain.py
tail -n 15 "$LOGS/test_ops_rest.log" | tee -a "$RES"

step train_gpu 120 env GROOTVL_FASHION_MNIST="${GROOTVL_FASHION_MNIST:-.device-data/fashion-mnist}" \
  GROOTVL_FORTUNES="${GROOTVL_FORTUNES:-.device-data/fortunes}" \
  python -m pytest tests/train/test_training_smoke.py -k gpu -q -rfEs -p no:cacheprovider
tail -n 15 "$LOGS/train_gpu.log" | tee -a "$RES"

say "# total $(( $(date +%s) - START ))s, status $STATUS"
exit $STATUS
