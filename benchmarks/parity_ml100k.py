"""Metric parity with RecBole on ML-100K: same split files, same hyperparameters.

    .venv/bin/python benchmarks/parity_ml100k.py \
        --recbole-python /work/peers/recbole-venv/bin/python

writes the split (outside the repo: ML-100K may not be redistributed) to --split-dir, runs
semrec's MostPop / ItemKNN / EASE on it, then RecBole 1.2.1 on the same files
(benchmarks/peers/recbole_parity.py, its own venv: benchmarks/peers/setup_recbole.sh), and
writes benchmarks/results/parity_ml100k.json and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from semrec.data.registry import load_dataset
from semrec.data.splits import RandomSplit, split
from semrec.evaluation import evaluate
from semrec.evaluation.report import markdown_table
from semrec.models import TrainData, model_class

HERE = Path(__file__).parent
KS = (20,)
N_NEIGHBORS, SHRINKAGE, EASE_REGULARIZATION = 100, 0.0, 250.0
MODELS = {
    "MostPop": ("most_pop", {}),
    "ItemKNN": ("item_knn", {"n_neighbors": N_NEIGHBORS, "shrinkage": SHRINKAGE}),
    "EASE": ("ease", {"regularization": EASE_REGULARIZATION}),
}


def write_split_files(data_split, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for part, interactions in (("train", data_split.train), ("test", data_split.test)):
        frame = interactions.to_frame()[["user_id", "item_id"]].drop_duplicates()
        frame.to_csv(directory / f"{part}.tsv", sep="\t", index=False)


def run_semrec(data_split) -> dict[str, dict[str, float]]:
    results = {}
    for label, (name, params) in MODELS.items():
        started = time.perf_counter()
        model = model_class(name)(**params).fit(TrainData(data_split.train))
        metrics = evaluate(model, data_split, ks=KS).metrics
        results[label] = {
            "recall@20": metrics["recall@20"],
            "ndcg@20": metrics["ndcg@20"],
            "seconds": round(time.perf_counter() - started, 2),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--split-dir", type=Path, default=Path("/tmp/semrec-parity/ml-100k"))
    parser.add_argument("--recbole-python", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "parity_ml100k.json")
    args = parser.parse_args()

    dataset = load_dataset("ml-100k", data_dir=args.data_dir)
    data_split = split(dataset, RandomSplit(test_ratio=0.2, seed=args.seed))
    write_split_files(data_split, args.split_dir)
    record = {
        "protocol": data_split.protocol,
        "split": data_split.summary(),
        "semrec": run_semrec(data_split),
    }
    if args.recbole_python is not None:
        peer_out = args.split_dir / "recbole.json"
        subprocess.run(
            [
                str(args.recbole_python),
                str(HERE / "peers" / "recbole_parity.py"),
                "--split-dir",
                str(args.split_dir),
                "--out",
                str(peer_out),
                "--item-knn-neighbors",
                str(N_NEIGHBORS),
                "--item-knn-shrink",
                str(SHRINKAGE),
                "--ease-regularization",
                str(EASE_REGULARIZATION),
            ],
            check=True,
        )
        record["recbole"] = json.loads(peer_out.read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))

    rows = {}
    for label in MODELS:
        ours = record["semrec"][label]
        row = {"semrec recall@20": ours["recall@20"], "semrec ndcg@20": ours["ndcg@20"]}
        if "recbole" in record:
            theirs = record["recbole"]["models"][label]
            row["recbole recall@20"] = theirs["recall@20"]
            row["recbole ndcg@20"] = theirs["ndcg@20"]
            row["rel. diff recall"] = f"{ours['recall@20'] / theirs['recall@20'] - 1:+.2%}"
            row["rel. diff ndcg"] = f"{ours['ndcg@20'] / theirs['ndcg@20'] - 1:+.2%}"
        rows[label] = row
    columns = list(next(iter(rows.values())))
    sys.stdout.write(markdown_table(rows, columns) + "\n")


if __name__ == "__main__":
    main()
