#!/usr/bin/env bash
# One prepared call on a lent GPU (the `device` tool), the work of benchmarks/GPU.md in its
# order, each step cut off by what is left of an overall budget so that the call returns in
# time with whatever finished. Prepare here first (`bash benchmarks/gpu_prepare.sh`), then
# run on the device with carry [".gpu-wheels", ".gpu-data"] and timeout_s 600:
#   bash benchmarks/gpu_session.sh
# Steps (each writes benchmarks/results/<name>.json through the usual scripts):
#   1. LightGCN, the fast recipe (issue 3: paper accuracy in <= 60 s), test curve every 10 epochs
#   2. constrained beam-search throughput (issue 5: users/s at 20 beams)
#   3. NGCF, the fast recipe at batch 8192 over 120 epochs (issue 3: what smaller batches add)
#   4. TIGER training speed with and without length-grouped batches
#   5. beam search against exhaustive ranking on every Beauty test user, for each TIGER run
#      gpu_prepare.sh carried (.gpu-data/runs/)
# Everything new under benchmarks/results/ and the session log come back in $OUT.
# On a machine without a GPU, a dry run checks the commands, every step for one epoch or a few
# seconds, its results kept out of the repo:
#   QUICK=1 DEVICE=cpu PYTHON=.venv/bin/python SEMREC_RESULTS=/tmp/dry OUT=/tmp/dry-out bash benchmarks/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${OUT:-/tmp/gpu-session-out}")
device=${DEVICE:-cuda}
deadline=$((SECONDS + ${BUDGET_S:-560}))
mkdir -p "$out"
log="$out/session.log"
touch /tmp/gpu-session-start

python=${PYTHON:-python3}
export PYTHONPATH=src SEMREC_DATA=${SEMREC_DATA:-.gpu-data} PYTHONUNBUFFERED=1
export SEMREC_GIT_COMMIT=$(cat .gpu-data/COMMIT 2>/dev/null || echo unknown)
results=${SEMREC_RESULTS:-benchmarks/results}
if ! "$python" -c "import pydantic" 2>/dev/null; then  # the device image lacks it
    "$python" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu-wheels/*.whl \
        || { echo "installing .gpu-wheels failed" >>"$log"; exit 1; }
    export PYTHONPATH=/tmp/site:src
fi
runs=/tmp/gpu-session-runs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$log" 2>&1

quick=${QUICK:-}
epochs() { if [ -n "$quick" ]; then echo "--set model.params.epochs=1"; else echo "--set model.params.epochs=$1"; fi; }

# step NAME LIMIT_S COMMAND...: runs COMMAND for at most LIMIT_S seconds or what is left
step() {
    local name=$1 limit=$2 left=$((deadline - SECONDS))
    shift 2
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 20 ]; then echo "== $name skipped: ${left}s left" >>"$log"; return; fi
    echo "== $name (at most ${limit}s): $*" >>"$log"
    local start=$SECONDS
    timeout "$limit" "$@" >>"$log" 2>&1
    echo "== $name exit $? after $((SECONDS - start))s" >>"$log"
}

# train NAME LIMIT_S TARGETS CONFIG ARGS...: a semrec run and its result record
train() {
    local name=$1 limit=$2 targets=$3 config=$4
    shift 4
    local command="python -m semrec -v train -c $config --set name=$name $*"
    step "$name" "$limit" "$python" -m semrec -v train -c "$config" --set output.dir="$runs" \
        --set name="$name" "$@"
    # shellcheck disable=SC2086  # targets are separate --target arguments
    "$python" benchmarks/record_result.py "$runs/$name" --command "$command" $targets >>"$log" 2>&1
}

train lightgcn-gowalla-fast-gpu 150 "--target recall@20=0.18 --target recall@20=0.1793 --target ndcg@20=0.1523" \
    benchmarks/configs/lightgcn-gowalla-fast-cpu.yaml --set model.params.eval_every=10 $(epochs 300)

seconds=20; [ -n "$quick" ] && seconds=2
step decoding-speed 60 "$python" benchmarks/decoding_speed.py --device "$device" --seconds $seconds

train ngcf-gowalla-fast-gpu-b8192 200 "--target recall@20=0.1539 --target ndcg@20=0.1300" \
    benchmarks/configs/ngcf-gowalla-fast-cpu.yaml --set model.params.batch_size=8192 \
    --set model.params.eval_every=20 $(epochs 120)

users=(); [ -n "$quick" ] && users=(--users 200)
step tiger-train-speed 90 "$python" benchmarks/tiger_train_speed.py --device "$device" \
    --codes .gpu-data/codes/amazon-beauty-p5-rqvae.safetensors --groups 1 2 4 "${users[@]}" --repeats 1

for run in .gpu-data/runs/*/; do
    [ -d "$run" ] || continue
    sample=(); [ -n "$quick" ] && sample=(--users 20)
    step "beam-gap-$(basename "$run")" 600 "$python" benchmarks/beam_gap.py "$run" --beams 20 50 "${sample[@]}"
done

(cd "$results" && find . -newer /tmp/gpu-session-start -name '*.json' -print0 \
    | tar --null -czf "$out/results.tar.gz" -T -)
echo "== done, $((deadline - SECONDS))s of the budget left" >>"$log"
