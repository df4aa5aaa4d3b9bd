#!/usr/bin/env bash
# The GPU measurements of docs/performance.md in one prepared run, under 5 minutes (290 s of limits), each step with its
# own time limit (a step that runs over or fails is recorded as such and the next one starts):
#   DBoF training examples/s, ours and the Model Garden's; NeXtVLADMixture with and without
#   --mixed_precision / --jit_compile; the input-bound share of a step; --strategy=mirrored over two
#   logical GPUs carved from the one device. Results: one JSON line per measurement in
#   $RESULTS (default: $OUT/gpu_results.jsonl when $OUT is set, else build/gpu_results.jsonl).
#
#   benchmarks/gpu.sh              # on the GPU machine
#   benchmarks/gpu.sh --cpu_smoke  # the same steps at tiny sizes on CPU (GPUs hidden): tests the script
#   GPU_STEPS="env dbof" benchmarks/gpu.sh ...   # only these steps
#   DATA_DIR=/tmp/d benchmarks/gpu.sh ...       # where the generated videos go (default: data/ of the repo)
set -u
cd "$(dirname "$0")/.."
smoke=() scale=1
if [[ "${1:-}" == "--cpu_smoke" ]]; then
  smoke=(--smoke) scale=3   # a busy 2-core CPU builds graphs slower than the GPU host's 16 cores
  export CUDA_VISIBLE_DEVICES=""
fi
results=${RESULTS:-${OUT:-build}/gpu_results.jsonl}
mkdir -p "$(dirname "$results")"
: > "$results"
export TF_CPP_MIN_LOG_LEVEL=2
started=$SECONDS

step() {  # step LIMIT_SECONDS NAME: one gpu_bench.py step in its own process, killed at its limit
  local limit=$(($1 * scale)) name=$2 status=0
  [[ -z "${GPU_STEPS:-}" || " $GPU_STEPS " == *" $name "* ]] || return 0
  echo "== $name (limit ${limit}s, ${SECONDS}s into the run)"
  timeout --kill-after=5 "$limit" python benchmarks/gpu_bench.py "$name" --results="$results" "${smoke[@]}" || status=$?
  if [[ $status -ne 0 ]]; then
    local why="exit status $status"
    [[ $status -eq 124 || $status -eq 137 ]] && why="ran past its ${limit}s limit"
    echo "{\"step\": \"$name\", \"failed\": \"$why\"}" >> "$results"
    echo "   $name: $why"
  fi
}

step 20 env            # limits: 290 s in all
step 30 data
step 40 dbof
step 30 model_garden
step 40 nextvlad
step 50 nextvlad_jit
step 25 input_share
step 25 mirrored
step 30 mirrored_train
echo "done in $((SECONDS - started)) s; results in $results"
