#!/usr/bin/env bash
# Prepares, on this machine, what a lent GPU machine (the `device` tool) needs to run semrec's
# GPU benchmarks but does not have: its image holds PyTorch and most of semrec's dependencies
# but not pydantic, and it cannot download anything nor see ../shared. This writes
#   .gpu-wheels/  pydantic and its compiled core for the device's Python 3.12 (x86-64)
#   .gpu-data/    the benchmark data sets the GPU runs read (copied from ../shared/data), and
#                 in .gpu-data/codes/ the item codes written by tokenizer_quality.py --codes-out
#                 runs/codes (TIGER's input; the device cannot encode text without the
#                 encoder's weights), and in .gpu-data/runs/ the trained CPU-sized Beauty TIGER
#                 runs of runs/ (config and model only) whose gap on every user is not yet measured
# Both folders are git-ignored: name them in the device call's `carry`. benchmarks/GPU.md
# has the device commands; benchmarks/gpu_session.sh is the prepared one.
#   bash benchmarks/gpu_prepare.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${1:-../shared/data}
python=${PYTHON:-.venv/bin/python}

rm -rf .gpu-wheels .gpu-data
mkdir -p .gpu-wheels .gpu-data
# the versions this checkout was tested with (pydantic pins its core exactly)
pydantic=$("$python" -c "import pydantic; print(pydantic.VERSION)")
core=$("$python" -c "import pydantic_core; print(pydantic_core.__version__)")
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu-wheels "pydantic==$pydantic" "pydantic-core==$core" annotated-types typing-inspection
for name in gowalla amazon-beauty-p5 amazon-sports-p5; do
    cp -r "$data_dir/$name" .gpu-data/
done
if compgen -G "runs/codes/*.safetensors" > /dev/null; then
    mkdir -p .gpu-data/codes
    cp runs/codes/*.safetensors .gpu-data/codes/
fi
for run in runs/tiger-beauty-*-cpu; do
    [ -f "$run/model/manifest.json" ] || continue
    # a run whose all-users gap is already measured (on CPU) needs no device time
    [ -f "benchmarks/results/beam-gap-$(basename "$run").json" ] && continue
    mkdir -p ".gpu-data/$run"
    cp -r "$run/config.yaml" "$run/model" ".gpu-data/$run/"
done
# the device's copy of the tree may lack git: results record this commit instead
"$python" -c "import sys; sys.path.insert(0, 'benchmarks'); from record_result import git_commit; print(git_commit())" > .gpu-data/COMMIT
du -sh .gpu-wheels .gpu-data
