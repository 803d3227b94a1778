"""Individual item fairness, original and corrected, of the four baselines on X-Wines and ML-100K.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fairness.py --data-dir ../shared/data

Protocols: X-Wines = the `semrec demo` protocol (ratings >= 4 as positives, 5-core, random
80/20 per user, seed 2024); ML-100K = every rating as a positive, random 80/20 per user, seed
2024 (as configs/ml100k-item_knn.yaml). Models and hyperparameters: the demo's
(semrec.demo.DEMO_MODELS). Full ranking, training items excluded, K = 10 and 20.

Writes benchmarks/results/fairness.json and prints, per data set and K, one table of every
measure per model, then for each measure with a corrected form whether ranking the models by
the original and by the corrected form gives the same order (Kendall's tau between them).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from record_result import git_commit
from semrec.config import DatasetConfig
from semrec.data.splits import RandomSplit, split
from semrec.demo import DEMO_DATASET, DEMO_MODELS, DEMO_SPLIT
from semrec.evaluation import evaluate
from semrec.evaluation.fairness import FAIRER, FAIRNESS_MEASURES
from semrec.evaluation.report import markdown_table
from semrec.experiment import DataLocation, fit_timed, prepare_dataset
from semrec.models import model_class

RESULTS = Path(__file__).parent / "results"
KS = (10, 20)
LABELS = {"most_pop": "MostPop", "item_knn": "ItemKNN", "ease": "EASE", "mf_bpr": "MF-BPR"}
DATASETS = {
    "xwines": (DEMO_DATASET, DEMO_SPLIT),
    "ml-100k": (DatasetConfig(name="ml-100k"), RandomSplit(test_ratio=0.2, seed=2024)),
}
CORRECTED = [name for name, _ in FAIRNESS_MEASURES if f"{name}_corrected" in FAIRER]


def fairest_first(values: dict[str, float], measure: str) -> list[str]:
    """Models ordered fairest first (NaN last)."""
    sign = -1.0 if FAIRER[measure] == "higher" else 1.0
    return sorted(values, key=lambda m: (math.isnan(values[m]), sign * values[m]))


def ranking_agreement(rows: dict[str, dict[str, float]], k: int) -> dict[str, dict]:
    out = {}
    for measure in CORRECTED:
        original = {m: rows[m][f"{measure}@{k}"] for m in rows}
        corrected = {m: rows[m][f"{measure}_corrected@{k}"] for m in rows}
        order_original = fairest_first(original, measure)
        order_corrected = fairest_first(corrected, f"{measure}_corrected")
        models = list(rows)
        tau = stats.kendalltau(
            [order_original.index(m) for m in models], [order_corrected.index(m) for m in models]
        ).statistic
        out[measure] = {
            "original_order": order_original,
            "corrected_order": order_corrected,
            "same_order": order_original == order_corrected,
            "kendall_tau": float(tau),
        }
    return out


def run_dataset(name: str, location: DataLocation) -> dict:
    dataset_config, split_spec = DATASETS[name]
    dataset = prepare_dataset(dataset_config, location)
    data_split = split(dataset, split_spec)
    rows: dict[str, dict[str, float]] = {}
    seconds = {}
    for model_name, params in DEMO_MODELS.items():
        started = time.perf_counter()
        model = model_class(model_name)(**params)
        fit_timed(model, dataset, data_split)
        result = evaluate(model, data_split, ks=KS)
        rows[LABELS[model_name]] = {**result.metrics, **result.slices}
        seconds[LABELS[model_name]] = round(time.perf_counter() - started, 1)
        protocol = result.protocol
    return {
        "dataset": dataset.summary(),
        "protocol": protocol,
        "split": data_split.summary(),
        "seconds": seconds,
        "metrics": rows,
        "ranking_original_vs_corrected": {k: ranking_agreement(rows, k) for k in KS},
    }


def print_tables(results: dict) -> None:
    for name, result in results["datasets"].items():
        for k in KS:
            columns = [f"{m}@{k}" for m, _ in FAIRNESS_MEASURES] + [f"recall@{k}"]
            print(f"\n### {name}, K = {k}\n")
            print(markdown_table(result["metrics"], columns))
            print()
            agreement = result["ranking_original_vs_corrected"][k]
            lines = [
                f"- {m}: original {' > '.join(a['original_order'])}; corrected "
                f"{' > '.join(a['corrected_order'])}; same order: {a['same_order']} "
                f"(tau {a['kendall_tau']:.2f})"
                for m, a in agreement.items()
            ]
            print("Fairest first:\n" + "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--out", type=Path, default=RESULTS / "fairness.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)
    location = DataLocation(data_dir=args.data_dir)
    results = {
        "command": " ".join(["python", *sys.argv]),
        "commit": git_commit(),
        "device": f"cpu ({torch.get_num_threads()} threads)",
        "machine": platform.platform(),
        "ks": list(KS),
        "datasets": {name: run_dataset(name, location) for name in args.datasets},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print_tables(results)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
