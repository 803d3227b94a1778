"""Constrained beam search against exhaustive ranking, for a trained generative (TIGER) run.

.venv/bin/python benchmarks/beam_gap.py runs/NAME [--ks 5 10 20] [--beams 20] \
    [--users N [--seed 0]] [--data-dir ../shared/data] [--threads N]

Evaluates the run's model on its test part twice, with the run's evaluation settings:
ranked by trie-constrained beam search (what ``semrec train`` reports) and by every item's
exact log-probability (``exhaustive_ranking``, which decodes the whole trie per user, one
token per trie node, so it suits catalogues of a few thousand items on CPU). Prints both
metric sets, the relative gap per metric ((exhaustive - beam) / exhaustive) and the share of
users whose top-10 is the same set both ways, and writes
benchmarks/results/beam-gap-<run name>.json (``-<N>-users`` appended with ``--users``, then
``-seed<S>`` with a ``--seed`` other than 0).

``--users N`` evaluates both ways on the same N test users drawn at random (``--seed``)
instead of all of them: exhaustive ranking of a 12,000-item catalogue for 22,000 users takes
hours on a CPU. The gap is then an estimate from that sample, and the result says so.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from semrec.atomic import write_text_atomic
from semrec.evaluation import EvaluationResult
from semrec.experiment import (
    DataLocation,
    device_description,
    evaluate_as_configured,
    load_run,
)

sys.path.insert(0, str(Path(__file__).parent))
from record_result import RESULTS, git_commit


def accuracy(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items() if k.split("@")[0] in ("recall", "ndcg")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--beams", type=int, nargs="+", default=[20])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--users", type=int, default=None, help="a random sample of test users")
    parser.add_argument("--seed", type=int, default=0, help="of the --users sample")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config, _, data_split, model = load_run(args.run_dir, DataLocation(args.data_dir))
    if model.name != "tiger":
        sys.exit(f"{args.run_dir}: a {model.name} run; beam search is a tiger model's")
    test_users = np.unique(data_split.test.user_index)
    if args.users is not None:
        if not 0 < args.users <= len(test_users):
            sys.exit(f"--users must be in 1..{len(test_users)} (the test users), got {args.users}")
        sample = np.random.default_rng(args.seed).choice(test_users, args.users, replace=False)
        test = data_split.test.select(np.isin(data_split.test.user_index, sample))
        data_split = replace(data_split, test=test)

    def ranked(**change: object) -> EvaluationResult:
        model.config = model.config.model_copy(update=change)
        result = evaluate_as_configured(model, data_split, config.evaluation, ks=args.ks)
        print(f"{change}: {accuracy(result.metrics)} ({result.seconds:.0f} s)", flush=True)
        return result

    exhaustive = ranked(exhaustive_ranking=True)
    top10 = np.sort(exhaustive.top_items[:, :10], axis=1)
    record = {
        "run": str(args.run_dir),
        "n_items": model.n_items,
        "n_users": len(exhaustive.user_index),
        "n_test_users": len(test_users),
        "exclude_seen": config.evaluation.exclude_seen,
        "user_sample": None if args.users is None else {"users": args.users, "seed": args.seed},
        "exhaustive": {"metrics": exhaustive.metrics, "seconds": round(exhaustive.seconds, 1)},
        "beam": {},
        "device": device_description(model.device),
        "threads": torch.get_num_threads(),
        "command": "python " + shlex.join(sys.argv),
        "git_commit": git_commit(),
        "date": time.strftime("%Y-%m-%d"),
    }
    for beam in args.beams:
        result = ranked(exhaustive_ranking=False, beam_size=beam)
        same = (np.sort(result.top_items[:, :10], axis=1) == top10).all(axis=1)
        entry = {
            "metrics": result.metrics,
            "seconds": round(result.seconds, 1),
            "relative_gap": {
                name: round((value - result.metrics[name]) / value, 4) if value else 0.0
                for name, value in exhaustive.metrics.items()
            },
            "same_top10_share": round(float(same.mean()), 4),
        }
        record["beam"][str(beam)] = entry
        print(
            f"beam {beam}: relative gap {accuracy(entry['relative_gap'])}, "
            f"same top-10 set for {entry['same_top10_share']:.1%} of users"
        )
    sampled = "" if args.users is None else f"-{args.users}-users"
    if args.users is not None and args.seed != 0:  # a second sample keeps the first's file
        sampled += f"-seed{args.seed}"
    path = RESULTS / f"beam-gap-{Path(args.run_dir).name}{sampled}.json"
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
