#!/usr/bin/env bash
# Fetch the files of SELFRec (Coder-Yu/SELFRec, the SimGCL authors' PyTorch library) that
# benchmarks/peers/selfrec_simgcl.py runs, each at a pinned commit, outside the repo:
#
#     bash benchmarks/peers/setup_selfrec.sh [DIR]     # default /work/peers/SELFRec
#
# Only SimGCL's own code is fetched: its model and training loop, the losses, the batch
# sampler and the data structure that builds the normalized adjacency. The rest of SELFRec
# (config files, logging, its per-user Python evaluation) is replaced by the harness. The
# commits are the versions these files had when the comparison was made: SimGCL.py,
# sampler.py and data.py at de8c626a, the PyTorch losses at 09e452bd, ui_graph.py at 15195074,
# torch_interface.py at b8a30c83. Nothing from SELFRec enters semrec.
# Needs network access to raw.githubusercontent.com. Idempotent.
set -euo pipefail

DIR="${1:-/work/peers/SELFRec}"
RAW=https://raw.githubusercontent.com/Coder-Yu/SELFRec
FILES=(
    "de8c626a8b46e4e09dd7fd7fe92b89ba1d68064e model/graph/SimGCL.py"
    "de8c626a8b46e4e09dd7fd7fe92b89ba1d68064e util/sampler.py"
    "de8c626a8b46e4e09dd7fd7fe92b89ba1d68064e data/data.py"
    "09e452bd0fcba94be2d9274eb722c6f1b5e327c3 util/loss_torch.py"
    "15195074499af847dc0da656ff9fc6e7c39086ff data/ui_graph.py"
    "b8a30c83bbbf14d51f889bdfc9c8f9e09c4c44d3 base/torch_interface.py"
)
for entry in "${FILES[@]}"; do
    read -r commit path <<<"$entry"
    mkdir -p "$DIR/$(dirname "$path")"
    if [ ! -s "$DIR/$path" ]; then
        curl -fsSL "$RAW/$commit/$path" -o "$DIR/$path.tmp"
        mv "$DIR/$path.tmp" "$DIR/$path"
    fi
done
echo "SELFRec files in $DIR"
