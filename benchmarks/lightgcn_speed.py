"""LightGCN on Gowalla, semrec vs RecBole 1.2.1, one after the other on the same machine.

    .venv/bin/python benchmarks/gowalla_split_files.py /tmp/semrec-speed/gowalla
    .venv/bin/python benchmarks/lightgcn_speed.py --split-dir /tmp/semrec-speed/gowalla \
        --recbole-python /work/peers/recbole-venv/bin/python --epochs 1

Both train LightGCN with the paper's settings (64 dims, 3 layers, batch 2048, Adam 1e-3, L2
1e-4, one uniform negative per positive) on the same split files for --epochs epochs, then
rank all items for every test user once (training items masked, K = 20). Reported: seconds
per training epoch, seconds per full evaluation, peak memory. Both sides use the same number
of torch threads (--threads, default torch's). The result goes to
benchmarks/results/lightgcn-speed-<device>.json; time to accuracy comes from the training
runs (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from record_result import git_commit  # benchmarks/ is sys.path[0] when run as a script
from semrec.data import Dataset, Interactions, Part
from semrec.data.splits import GivenSplit, split
from semrec.evaluation import evaluate
from semrec.experiment import device_description, peak_memory_mib, reset_peak_memory
from semrec.models import TrainData
from semrec.models.graph import LightGCN

RESULTS = Path(__file__).parent / "results"
PEER = Path(__file__).parent / "peers" / "recbole_lightgcn_speed.py"


def read_split_files(split_dir: Path) -> Dataset:
    """The split files as a semrec data set with given parts (same rows RecBole reads)."""
    frames = {}
    for part in ("train", "test"):
        lines = (split_dir / f"{part}.tsv").read_text().splitlines()[1:]
        frames[part] = [line.split("\t") for line in lines if line]
    rows = frames["train"] + frames["test"]
    interactions = Interactions.from_ids([r[0] for r in rows], [r[1] for r in rows])
    parts = np.repeat([Part.TRAIN, Part.TEST], [len(frames["train"]), len(frames["test"])])
    return Dataset.build("gowalla-split-files", interactions, given_parts=parts.astype(np.int8))


def semrec_side(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    data_split = split(read_split_files(args.split_dir), GivenSplit())
    load_seconds = time.perf_counter() - started
    model = LightGCN(epochs=args.epochs, batch_size=args.batch_size, eval_every=0)
    if args.device:
        model.device = torch.device(args.device)
    reset_peak_memory()
    model.fit(TrainData(data_split.train))
    train_memory = peak_memory_mib()
    reset_peak_memory()
    result = evaluate(model, data_split, ks=(20,), batch_size=args.eval_users_per_batch)
    return {
        "load_seconds": round(load_seconds, 2),
        "epoch_seconds": [record["train_seconds"] for record in model.history],
        "eval_seconds": round(result.seconds, 3),
        "metrics": {k: result.metrics[k] for k in ("recall@20", "ndcg@20")},
        "peak_memory_mib": {"train": train_memory, "evaluate": peak_memory_mib()},
        "device": device_description(model.device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--recbole-python", type=Path, help="skip RecBole when not given")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--eval-users-per-batch", type=int, default=2048)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    record = {"command": " ".join(sys.argv), "git_commit": git_commit(), "epochs": args.epochs}
    record["semrec"] = semrec_side(args)
    print("semrec", json.dumps(record["semrec"]))
    if args.recbole_python:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "recbole.json"
            command = [
                str(args.recbole_python), str(PEER), "--split-dir", str(args.split_dir),
                "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                "--eval-users-per-batch", str(args.eval_users_per_batch),
                "--out", str(out), "--threads", str(torch.get_num_threads()),
            ]  # fmt: skip
            if args.device:
                command += ["--device", args.device]
            subprocess.run(command, check=True)
            record["recbole"] = json.loads(out.read_text())
        print("recbole", json.dumps({k: v for k, v in record["recbole"].items() if k != "config"}))
    device = "gpu" if "cuda" in record["semrec"]["device"] else "cpu"
    path = RESULTS / f"lightgcn-speed-{device}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
