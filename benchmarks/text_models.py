"""Text-aware models against ID-based ones on data sets with item text (issue 4 figures).

    .venv/bin/python benchmarks/text_models.py --data-dir ../shared/data [--figure main|cold]
        [--datasets ml-100k xwines ...] [--models ease lightgcn ...] [--force]

``main``: per data set, one random 80/20 split per user (seed 2024), full ranking over all
items with training items excluded, Recall@20 / NDCG@20 of each model on the test part.
``cold``: 20 % of the items held out with all their interactions (seed 2024); the test users
rank the held-out items only (``cold_items`` protocol).

Every model trains a fixed number of epochs chosen before any test result was seen (there
is no validation part, so nothing is selected on the test set). Item text is encoded with
all-MiniLM-L6-v2 (cached in the semrec cache). Each finished run is appended at once to
``benchmarks/results/text-models-<figure>.json`` (a crash loses only the run in progress);
runs already there are skipped unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from record_result import git_commit
from semrec.atomic import write_text_atomic
from semrec.config import ExperimentConfig
from semrec.evaluation import evaluate
from semrec.experiment import DataLocation, load_run, run_experiment
from semrec.models import Query

RESULTS = Path(__file__).parent / "results"

#: data set -> dataset section (explicit ratings: 4 and above count as positives)
DATASETS: dict[str, dict[str, Any]] = {
    "ml-100k": {"name": "ml-100k", "min_rating": 4},
    "xwines": {"name": "xwines", "min_rating": 4},
    "amazon-scientific-unisrec": {"name": "amazon-scientific-unisrec"},
    "amazon-beauty-p5": {"name": "amazon-beauty-p5"},
}

# One setting per model for every data set (not tuned per data set).
MF = {"epochs": 200, "batch_size": 2048, "learning_rate": 5e-3}
# pair sampling, with which results/text-models-*.json were recorded (the graph models'
# default is now user sampling, as in the official LightGCN and AlphaRec code)
GRAPH = {**MF, "eval_every": 0, "positives": "pairs"}
ALPHAREC = {"mlp_hidden_size": 1024, "eval_every": 0, "positives": "pairs"}
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "most_pop": ("most_pop", {}),
    "ease": ("ease", {"regularization": 500.0}),
    "text_knn": ("text_knn", {}),
    "mf_bpr": ("mf_bpr", {**MF}),
    "mf_bpr_text_init": ("mf_bpr", {**MF, "item_init": "text"}),
    "lightgcn": ("lightgcn", {**GRAPH}),
    "lightgcn_text_init": ("lightgcn", {**GRAPH, "item_init": "text"}),
    "lightgcn_id_text_concat": ("lightgcn_concat", {**GRAPH}),
    # AlphaRec: the reference defaults except a 1,024-unit MLP hidden layer (the reference
    # rule gives 10,752 for 384-d vectors, ~10x the CPU time) and a fixed 50 epochs
    "alpharec": ("alpharec", {**ALPHAREC, "epochs": 50}),
    # the same for 10 epochs: on Beauty one epoch took 100-150 s on one shared CPU thread
    "alpharec_10_epochs": ("alpharec", {**ALPHAREC, "epochs": 10}),
}
COLD_MODELS = ("most_pop", "text_knn", "alpharec", "lightgcn_text_init")

SPLITS = {
    "main": {"protocol": "random", "test_ratio": 0.2, "seed": 2024},
    "cold": {"protocol": "cold_items", "item_ratio": 0.2, "seed": 2024},
}


def experiment(figure: str, dataset: str, model: str, output: Path) -> ExperimentConfig:
    name, params = MODELS[model]
    return ExperimentConfig.model_validate(
        {
            "name": f"{figure}-{dataset}-{model}",
            "dataset": DATASETS[dataset],
            "split": SPLITS[figure],
            "model": {"name": name, "params": params},
            "evaluation": {"ks": [20], "batch_size": 2048},
            "output": {"dir": str(output)},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--figure", choices=sorted(SPLITS), default="main")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", choices=list(MODELS))
    parser.add_argument("--output", type=Path, default=Path("runs/text-models"))
    parser.add_argument("--force", action="store_true", help="re-run runs already recorded")
    parser.add_argument(
        "--collect",
        action="store_true",
        help="only add finished runs missing from the file, from their run dirs (no training)",
    )
    parser.add_argument(
        "--backfill-parts",
        action="store_true",
        help="only add the score split to recorded lightgcn_concat runs (from their run dirs)",
    )
    args = parser.parse_args()
    models = args.models or (list(COLD_MODELS) if args.figure == "cold" else list(MODELS))

    path = RESULTS / f"text-models-{args.figure}.json"
    record = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    done = {(r["dataset"], r["model"]) for r in record["runs"]}
    command = "python benchmarks/text_models.py " + " ".join(sys.argv[1:])
    if args.collect:  # rows of finished runs missing from the file (e.g. after a crash)
        for dataset in args.datasets:
            for model in models:
                run_dir = args.output / f"{args.figure}-{dataset}-{model}"
                if (dataset, model) not in done and (run_dir / "metrics.json").is_file():
                    save_row(path, row_of_run(run_dir, dataset, model))
                    print("collected", run_dir, flush=True)
        record = json.loads(path.read_text())
        if not args.backfill_parts:
            print(markdown_table(record))
            return
    if args.backfill_parts:
        for row in record["runs"]:
            if row["registry_model"] == "lightgcn_concat" and "score_parts" not in row:
                run_dir = args.output / f"{args.figure}-{row['dataset']}-{row['model']}"
                row["score_parts"] = score_parts(run_dir, DataLocation(data_dir=args.data_dir))
                save_row(path, row)
                print(row["dataset"], row["score_parts"], flush=True)
        return
    for dataset in args.datasets:
        for model in models:
            if (dataset, model) in done and not args.force:
                continue
            config = experiment(args.figure, dataset, model, args.output)
            started = time.perf_counter()
            run_dir = run_experiment(config, DataLocation(data_dir=args.data_dir))
            row = row_of_run(run_dir, dataset, model)
            row["wall_seconds"] = round(time.perf_counter() - started, 1)
            if row["registry_model"] == "lightgcn_concat":
                row["score_parts"] = score_parts(run_dir, DataLocation(data_dir=args.data_dir))
            record = save_row(
                path, row, command=command, git_commit=git_commit(), figure=args.figure
            )
            print(
                f"{dataset:28s} {model:26s} R@20 {row['metrics']['recall@20']:.4f} "
                f"N@20 {row['metrics']['ndcg@20']:.4f}  fit {row['fit_seconds']:.0f}s",
                flush=True,
            )
    print(markdown_table(record))


def row_of_run(run_dir: Path, dataset: str, model: str) -> dict[str, Any]:
    """A results row from a finished run directory's metrics.json."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "dataset": dataset,
        "model": model,
        "registry_model": metrics["model"],
        "config": metrics["config"],
        "metrics": metrics["metrics"],
        "protocol": metrics.get("protocol"),
        "fit_seconds": metrics["fit_seconds"],
        "peak_memory_mib": metrics["peak_memory_mib"],
        "device": metrics["device"],
        "dataset_summary": metrics["dataset"],
    }


def save_row(path: Path, row: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Put one run's row into the results file, re-read just before writing, so processes
    filling different data sets of one figure do not drop each other's rows."""
    record = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    key = (row["dataset"], row["model"])
    record["runs"] = [r for r in record["runs"] if (r["dataset"], r["model"]) != key] + [row]
    record.update(fields)
    write_text_atomic(path, json.dumps(record, indent=1))
    return record


def score_parts(run_dir: Path, location: DataLocation) -> dict[str, Any]:
    """Does the text half of an ID+text concatenation dominate? Its share of |score| over
    every (test user, item) cell, and the test metrics of each half scoring alone."""
    _, _, data_split, model = load_run(run_dir, location)
    users = np.flatnonzero(data_split.test.user_counts())
    text_total = id_total = 0.0
    for start in range(0, len(users), 2048):
        id_part, text_part = model.score_parts(Query.users(users[start : start + 2048]))
        id_total += id_part.abs().sum().item()
        text_total += text_part.abs().sum().item()
    share = text_total / (id_total + text_total)
    parts: dict[str, Any] = {"text_share_of_abs_score": round(share, 4)}
    for index, half in enumerate(("id_only", "text_only")):
        model.score = lambda query, index=index: model.score_parts(query)[index]
        metrics = evaluate(model, data_split, ks=[20]).metrics
        parts[half] = {k: metrics[k] for k in ("recall@20", "ndcg@20")}
    return parts


def markdown_table(record: dict[str, Any]) -> str:
    datasets = list(dict.fromkeys(r["dataset"] for r in record["runs"]))
    models = list(dict.fromkeys(r["model"] for r in record["runs"]))
    cells = {(r["dataset"], r["model"]): r for r in record["runs"]}
    lines = [
        "| model | " + " | ".join(f"{d} R@20 / N@20" for d in datasets) + " |",
        "|---|" + "---|" * len(datasets),
    ]
    for model in models:
        row = []
        for dataset in datasets:
            run = cells.get((dataset, model))
            row.append(
                "–"
                if run is None
                else f"{run['metrics']['recall@20']:.4f} / {run['metrics']['ndcg@20']:.4f}"
            )
        lines.append(f"| {model} | " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
