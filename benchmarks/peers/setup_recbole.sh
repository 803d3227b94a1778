#!/usr/bin/env bash
# Build the RecBole 1.2.1 venv used by benchmarks/peers/recbole_parity.py (outside the repo).
#
#     bash benchmarks/peers/setup_recbole.sh [VENV_DIR]     # default /work/peers/recbole-venv
#
# Idempotent: re-running on an existing venv only re-checks the pins. Python 3.11 (python3).
#
# Pins and why:
# * torch==2.13.0 first and alone: on this workplace pip resolves that to the local CPU wheel
#   (torch-2.13.0+cpu from /opt/wheels); any other way of resolving torch may pull a multi-GB CUDA
#   build. Later steps name torch==2.13.0 again or leave it alone, and the script checks that
#   no nvidia-* package got in.
# * numpy<2: RecBole 1.2.1 sets np.float = np.float_ etc. (np.float_ is gone in numpy 2).
# * scipy<1.12: the known-good pin of RecBole 1.2.1's era; we found no specific call in
#   Pop/ItemKNN/EASE that needs it, it just keeps the stack at what was tested.
# * pandas<3: pandas 3 changes string dtypes / copy-on-write under RecBole's loader; 2.3 works.
# * setuptools<70: ray 2.6.3 (RecBole needs ray<=2.6.3, imported by recbole.quick_start) does
#   `import pkg_resources`, which recent setuptools no longer ships. torch 2.13.0's metadata asks
#   for setuptools>=77.0.3 (only for building C++ extensions), so pip refuses both in one
#   resolve; we install setuptools<70 in a separate step, where pip prints a dependency-conflict
#   warning about torch that is expected and harmless here.
set -euo pipefail

VENV="${1:-/work/peers/recbole-venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)

installed() {  # installed() NAME VERSION-PREFIX: is NAME installed with a version starting so?
    "$VENV/bin/python" - "$1" "$2" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    sys.exit(0 if version(sys.argv[1]).startswith(sys.argv[2]) else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
}

# 1. torch, CPU build, on its own.
if ! installed torch 2.13.0; then
    "${PIP[@]}" install torch==2.13.0
fi

# 2. RecBole and its dependencies, with torch pinned so pip keeps the installed build.
if ! installed recbole 1.2.1; then
    "${PIP[@]}" install recbole==1.2.1 torch==2.13.0 "numpy<2" "scipy<1.12" "pandas<3"
fi

# 3. The pins that must win over what step 2 resolved (see above for setuptools).
"${PIP[@]}" install "setuptools<70" "numpy<2" "scipy<1.12" "pandas<3"

# 4. Checks: CPU torch, no CUDA wheels, RecBole imports (quick_start pulls in ray).
if "$VENV/bin/python" -m pip list 2>/dev/null | grep -i '^nvidia-'; then
    echo "setup_recbole.sh: CUDA packages were installed into $VENV; remove the venv and retry" >&2
    exit 1
fi
"$VENV/bin/python" - <<'EOF'
import numpy, pandas, scipy, setuptools, torch
import recbole
from recbole.quick_start import run_recbole  # noqa: F401  (imports ray -> pkg_resources)
from recbole.model.general_recommender import EASE, ItemKNN, Pop  # noqa: F401
assert recbole.__version__ == "1.2.1", recbole.__version__
assert torch.__version__.startswith("2.13.0") and not torch.cuda.is_available(), torch.__version__
assert numpy.__version__.startswith("1."), numpy.__version__
print("recbole", recbole.__version__, "torch", torch.__version__, "numpy", numpy.__version__,
      "scipy", scipy.__version__, "pandas", pandas.__version__,
      "setuptools", setuptools.__version__)
EOF
