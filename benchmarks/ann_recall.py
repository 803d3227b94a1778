"""Recall@k of FAISS (HNSW) retrieval against exact top-k, and its speed, on a saved model.

.venv/bin/python benchmarks/ann_recall.py runs/gowalla-lightgcn [--users 2000] [--k 10] \
    [--ef-search 64 128 256] [--name gowalla-lightgcn]

The model must expose user and item vectors (graph models, MF-BPR). For a sample of users
(seen items excluded, as in serving) it times exact retrieval (the model's scores, then
top-k) and the HNSW index, one query at a time (as a server answers them) and in batches,
and reports recall@k = |ANN top-k ∩ exact top-k| / |exact top-k| per efSearch and the speed
ratio. Writes results/ann-recall-<name>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from record_result import git_commit
from semrec.atomic import write_text_atomic
from semrec.models import Query, load_model
from semrec.serving.batch import model_dir_of
from semrec.serving.index import ExactRetrieval, FaissRetrieval, measure_recall

RESULTS = Path(__file__).parent / "results"


def seconds_per_query(retrieval, users: np.ndarray, k: int, model) -> float:
    """Mean seconds of one single-user top-k (seen items excluded)."""
    started = time.perf_counter()
    for user in users:
        query = Query.users([user])
        retrieval.top_k(query, k, model.history_matrix(query))
    return (time.perf_counter() - started) / len(users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path, help="run directory or saved model directory")
    parser.add_argument("--users", type=int, default=2000, help="sampled users for recall")
    parser.add_argument("--single-users", type=int, default=300, help="users timed one by one")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--neighbours", type=int, default=32, help="HNSW M")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--threads", type=int, help="torch and FAISS threads (default: all)")
    parser.add_argument("--name", help="result name (default: the model directory's name)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        import faiss

        faiss.omp_set_num_threads(args.threads)

    model = load_model(model_dir_of(args.model))
    model.user_item_vectors(Query.users([0]))  # propagate once, outside the timings
    exact = ExactRetrieval(model)
    rng = np.random.default_rng(1)
    single = rng.choice(model.n_users, size=min(args.single_users, model.n_users), replace=False)
    exact_ms = seconds_per_query(exact, single, args.k, model) * 1000
    print(f"{model.name}: {model.n_items:,} items, {model.n_users:,} users")
    print(f"exact: {exact_ms:.3f} ms per single-user query")
    rows = []
    for ef_search in args.ef_search:
        index = FaissRetrieval(model, neighbours=args.neighbours, ef_search=ef_search)
        recall = measure_recall(model, index, k=args.k, n_users=args.users)
        ann_ms = seconds_per_query(index, single, args.k, model) * 1000
        row = {
            "ef_search": ef_search,
            f"recall@{args.k}": recall[f"recall@{args.k}"],
            "users": recall["users"],
            "build_seconds": round(index.build_seconds, 2),
            "single_query_ms": {"exact": round(exact_ms, 3), "faiss": round(ann_ms, 3)},
            "single_query_speedup": round(exact_ms / ann_ms, 2),
            "batched_seconds": {
                "exact": recall["exact_seconds"],
                "faiss": recall["approximate_seconds"],
            },
            "batched_speedup": round(
                recall["exact_seconds"] / max(recall["approximate_seconds"], 1e-9), 2
            ),
        }
        print(
            f"HNSW M={args.neighbours} efSearch={ef_search}: recall@{args.k} "
            f"{row[f'recall@{args.k}']:.4f}, {ann_ms:.3f} ms per query "
            f"({row['single_query_speedup']}x exact), batched {row['batched_speedup']}x, "
            f"build {row['build_seconds']} s"
        )
        rows.append(row)
    record = {
        "name": args.name or args.model.name,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "git_commit": git_commit(),
        "device": f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)",
        "machine": platform.platform(),
        "model": model.name,
        "n_items": model.n_items,
        "n_users": model.n_users,
        "k": args.k,
        "hnsw_neighbours": args.neighbours,
        "results": rows,
    }
    if not args.no_write:
        path = RESULTS / f"ann-recall-{record['name']}.json"
        write_text_atomic(path, json.dumps(record, indent=1))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
