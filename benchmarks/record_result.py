"""Turn a finished (or interrupted) `semrec train` run into benchmarks/results/<name>.json.

.venv/bin/python benchmarks/record_result.py runs/NAME --command "semrec train -c ..." \
    [--target recall@20=0.18] [--name NAME]

The record holds the run's test metrics (when it finished), its per-epoch history (training
seconds, monitored metrics), the time to the first evaluation at or above each target
(training seconds alone, and wall seconds including the evaluations along the way), peak
memory, the device, the command and the git commit of the working tree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

# SEMREC_RESULTS redirects what this and the scripts importing RESULTS write (a dry run's)
RESULTS = Path(os.environ.get("SEMREC_RESULTS", Path(__file__).parent / "results"))


def git_commit() -> str:
    """HEAD, marked when tracked files differ from it. A copy of the tree without git (the GPU
    machine's) takes SEMREC_GIT_COMMIT, which gpu_session.sh sets from gpu_prepare.sh's note."""
    if "SEMREC_GIT_COMMIT" in os.environ and not Path(".git").exists():
        return os.environ["SEMREC_GIT_COMMIT"]
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        # the result files themselves do not count: they are this script's output
        [
            "git",
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ":(top)",
            ":(top,exclude)benchmarks/results",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return commit + ("+uncommitted-changes" if dirty else "")


def time_to_target(history: list[dict[str, Any]], metric: str, target: float) -> dict | None:
    """First monitored epoch whose ``metric`` (any part prefix) reaches ``target``."""
    train_seconds = wall_seconds = 0.0
    for record in history:
        train_seconds += record["train_seconds"]
        wall_seconds += record["train_seconds"] + record.get("eval_seconds", 0.0)
        value = next((v for k, v in record.items() if k.endswith(metric)), None)
        if value is not None and value >= target:
            return {
                "epoch": record["epoch"],
                "value": value,
                "train_seconds": round(train_seconds, 1),
                "wall_seconds_with_evaluations": round(wall_seconds, 1),
            }
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--command", required=True, help="the command that produced the run")
    parser.add_argument("--name", help="result name (default: the run directory's name)")
    parser.add_argument("--target", action="append", default=[], help="METRIC=VALUE")
    parser.add_argument("--note", default="", help="anything a reader must know")
    args = parser.parse_args()
    run = args.run_dir
    history_path = run / "training" / "history.jsonl"  # absent for closed-form models
    lines = history_path.read_text().splitlines() if history_path.is_file() else []
    history = [json.loads(line) for line in lines if line]
    metrics_path = run / "metrics.json"
    finished = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    targets = {}
    for spec in args.target:
        metric, value = spec.split("=")
        targets[f"{metric}>={value}"] = time_to_target(history, metric, float(value))
    record = {
        "name": args.name or run.name,
        "command": args.command,
        "git_commit": git_commit(),
        "config": yaml.safe_load((run / "config.yaml").read_text()),
        "finished": finished is not None,
        "epochs_run": len(history),
        "train_seconds": round(sum(r["train_seconds"] for r in history), 1),
        "monitor_eval_seconds": round(sum(r.get("eval_seconds", 0.0) for r in history), 1),
        "time_to_target": targets,
        "note": args.note,
        "history": history,
    }
    if finished is not None:
        record.update(
            test_metrics=finished["metrics"],
            fit_seconds=finished["fit_seconds"],
            final_eval_seconds=finished["seconds"],
            peak_memory_mib=finished["peak_memory_mib"],
            device=finished["device"],
        )
    out = RESULTS / f"{record['name']}.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
