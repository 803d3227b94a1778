"""Constrained beam search against exhaustive ranking, for a trained generative (TIGER) run.

.venv/bin/python benchmarks/beam_gap.py runs/NAME [--ks 5 10 20] [--beams 20] \
    [--users N [--seed 0]] [--parts N] [--data-dir ../shared/data] [--threads N]

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

``--parts N`` ranks the users in N disjoint parts, one after another, and saves each part's
sums in ``<run>/beam-gap-parts/`` as it finishes, so a long run stopped part-way keeps what
it finished: the same command again skips the saved parts, and adding beam widths to it
ranks only those (``seconds`` then add up runs made with different ``threads``; the record
names the last). The record's metrics are the per-user ranking metrics (recall, NDCG, hit
rate, precision, MRR, MAP) averaged over all the users of all parts, which is exact for any
number of parts; catalogue-level measures (coverage, fairness) do not bear on the gap and
are left out.
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
from semrec.data.splits import Split
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


def sums(result: EvaluationResult) -> dict[str, float]:
    """Each per-user metric summed over the result's users (parts add up exactly)."""
    return {name: float(values.sum()) for name, values in result.per_user.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--beams", type=int, nargs="+", default=[20])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--users", type=int, default=None, help="a random sample of test users")
    parser.add_argument("--seed", type=int, default=0, help="of the --users sample")
    parser.add_argument("--parts", type=int, default=1, help="disjoint user parts, each saved")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config, _, data_split, model = load_run(args.run_dir, DataLocation(args.data_dir))
    if model.name != "tiger":
        sys.exit(f"{args.run_dir}: a {model.name} run; beam search is a tiger model's")
    test_index = data_split.test.user_index
    test_users = np.unique(test_index)
    n_test_users = len(test_users)
    if args.users is not None:
        if not 0 < args.users <= len(test_users):
            sys.exit(f"--users must be in 1..{len(test_users)} (the test users), got {args.users}")
        sample = np.random.default_rng(args.seed).choice(test_users, args.users, replace=False)
        test_users = np.sort(sample)
    if not 0 < args.parts <= len(test_users):
        sys.exit(f"--parts must be in 1..{len(test_users)} (the users ranked), got {args.parts}")

    def ranked(part_split: Split, **change: object) -> EvaluationResult:
        model.config = model.config.model_copy(update=change)
        result = evaluate_as_configured(model, part_split, config.evaluation, ks=args.ks)
        print(f"{change}: {accuracy(result.metrics)} ({result.seconds:.0f} s)", flush=True)
        return result

    settings = {"ks": args.ks, "users": args.users, "seed": args.seed}
    parts_dir = args.run_dir / "beam-gap-parts"
    parts = []
    for part, users in enumerate(np.array_split(test_users, args.parts)):
        path = parts_dir / f"part-{part + 1}-of-{args.parts}.json"
        saved = json.loads(path.read_text()) if path.exists() else None
        if saved is not None and saved["settings"] != settings:
            sys.exit(f"{path}: saved with {saved['settings']}, not {settings}; remove it")
        missing = [b for b in args.beams if saved is None or f"beam {b}" not in saved]
        print(
            f"part {part + 1} of {args.parts}: {len(users)} users, to rank: "
            f"{'exhaustive, ' if saved is None else ''}beams {missing}",
            flush=True,
        )
        part_split = replace(data_split, test=data_split.test.select(np.isin(test_index, users)))
        if saved is None:
            exhaustive = ranked(part_split, exhaustive_ranking=True)
            saved = {"settings": settings, "n_users": len(exhaustive.user_index)}
            saved["exhaustive"] = {
                "sums": sums(exhaustive),
                "seconds": exhaustive.seconds,
                "top10": np.sort(exhaustive.top_items[:, :10], axis=1).tolist(),
            }
        top10 = saved["exhaustive"].get("top10")  # parts saved before it was kept lack it
        for beam in missing:
            result = ranked(part_split, exhaustive_ranking=False, beam_size=beam)
            beam_top10 = np.sort(result.top_items[:, :10], axis=1)
            same = None if top10 is None else (beam_top10 == np.array(top10)).all(axis=1)
            saved[f"beam {beam}"] = {
                "sums": sums(result),
                "seconds": result.seconds,
                "same_top10_users": None if same is None else int(same.sum()),
            }
        if args.parts > 1 and missing:
            write_text_atomic(path, json.dumps(saved) + "\n")
        parts.append(saved)

    n_users = sum(part["n_users"] for part in parts)

    def combined(key: str) -> dict:
        metrics = {
            name: sum(part[key]["sums"][name] for part in parts) / n_users
            for name in parts[0][key]["sums"]
        }
        return {"metrics": metrics, "seconds": round(sum(p[key]["seconds"] for p in parts), 1)}

    exhaustive = combined("exhaustive")
    record = {
        "run": str(args.run_dir),
        "n_items": model.n_items,
        "n_users": n_users,
        "n_test_users": n_test_users,
        "exclude_seen": config.evaluation.exclude_seen,
        "user_sample": None if args.users is None else {"users": args.users, "seed": args.seed},
        "parts": args.parts,
        "exhaustive": exhaustive,
        "beam": {},
        "device": device_description(model.device),
        "threads": torch.get_num_threads(),
        "command": "python " + shlex.join(sys.argv),
        "git_commit": git_commit(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"all {n_users} users, exhaustive: {accuracy(exhaustive['metrics'])}")
    for beam in args.beams:
        entry = combined(f"beam {beam}")
        entry["relative_gap"] = {
            name: round((value - entry["metrics"][name]) / value, 4) if value else 0.0
            for name, value in exhaustive["metrics"].items()
        }
        same = [part[f"beam {beam}"]["same_top10_users"] for part in parts]
        entry["same_top10_share"] = None if None in same else round(sum(same) / n_users, 4)
        record["beam"][str(beam)] = entry
        share = entry["same_top10_share"]
        print(
            f"beam {beam}: {accuracy(entry['metrics'])}, relative gap "
            f"{accuracy(entry['relative_gap'])}, same top-10 set for "
            f"{'an unknown share' if share is None else f'{share:.1%}'} of users"
        )
    sampled = "" if args.users is None else f"-{args.users}-users"
    if args.users is not None and args.seed != 0:  # a second sample keeps the first's file
        sampled += f"-seed{args.seed}"
    path = RESULTS / f"beam-gap-{Path(args.run_dir).name}{sampled}.json"
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
