"""`semrec data info` for every registered data set that is present, as one Markdown table.

.venv/bin/python benchmarks/data_info.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from semrec.data.registry import REGISTRY, available_datasets, load_dataset
from semrec.evaluation.report import markdown_table

COLUMNS = ["users", "items", "interactions", "density", "text_coverage", "given split", "load s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    env = os.environ.get("SEMREC_DATA")
    present = available_datasets(data_dir=args.data_dir, env_data_dir=env)
    rows = {}
    for name in REGISTRY:
        if name not in present:
            rows[name] = {"users": "absent"}
            continue
        started = time.perf_counter()
        summary = load_dataset(name, data_dir=args.data_dir, env_data_dir=env).summary()
        given = [summary.get(f"given_{p}") for p in ("train", "valid", "test")]
        rows[name] = {
            "users": f"{summary['users']:,}",
            "items": f"{summary['items']:,}",
            "interactions": f"{summary['interactions']:,}",
            "density": f"{summary['density']:.5f}",
            "text_coverage": f"{summary['text_coverage']:.3f}",
            "given split": "/".join(f"{g:,}" for g in given) if given[0] is not None else "-",
            "load s": f"{time.perf_counter() - started:.2f}",
        }
    sys.stdout.write(markdown_table(rows, COLUMNS, row_label="data set") + "\n")


if __name__ == "__main__":
    main()
