"""Seconds per TIGER training epoch with and without length-grouped batches, on real sequences.

.venv/bin/python benchmarks/tiger_train_speed.py \
    --codes runs/codes/amazon-beauty-p5-rqvae.safetensors [--dataset amazon-beauty-p5] \
    [--users 4000] [--groups 1 4] [--repeats 2] [--device cpu] [--threads N] \
    [--data-dir ../shared/data]

The leave-one-out training part of the data set, cut to its first ``--users`` users (their
history lengths are the data set's), one epoch of the CPU-sized model of
``configs/tiger-beauty-semantic-cpu.yaml`` (2+2 layers, size 64, 2 heads, feed-forward 256,
batch 256), with ``seq2seq.LENGTH_GROUPS`` set to each ``--groups`` value in turn for ``--device``,
interleaved ``--repeats`` times. The
encoder's all-padding columns are left out in every variant. Prints seconds per epoch and
writes benchmarks/results/tiger-train-speed-<device type>.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from semrec.atomic import write_text_atomic
from semrec.config import DatasetConfig
from semrec.data.splits import LeaveOneOutSplit, split
from semrec.experiment import DataLocation, device_description, prepare_dataset
from semrec.models import TrainData
from semrec.models.generative import seq2seq
from semrec.models.generative.tokenizers import load_codes

sys.path.insert(0, str(Path(__file__).parent))
from record_result import RESULTS, git_commit

CPU_SIZED = {"n_layers": 2, "embedding_size": 64, "n_heads": 2, "feedforward_size": 256}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=Path, required=True)
    parser.add_argument("--dataset", default="amazon-beauty-p5")
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--groups", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = prepare_dataset(DatasetConfig(name=args.dataset), DataLocation(args.data_dir))
    train = split(dataset, LeaveOneOutSplit()).train
    train = train.select(train.user_index < args.users)
    codes = load_codes(args.codes, train.item_ids)
    device = torch.device(args.device)
    lengths = np.bincount(train.user_index) - 1
    print(f"{args.users} users, {lengths.sum()} training examples", flush=True)

    seconds: dict[int, list[float]] = {groups: [] for groups in args.groups}
    for _ in range(args.repeats):
        for groups in args.groups:
            seq2seq.LENGTH_GROUPS = {device.type: groups}
            model = seq2seq.Tiger(**CPU_SIZED, epochs=1, eval_every=0)
            model.device = device
            model.item_codes = codes
            model.fit(TrainData(train))
            seconds[groups].append(model.history[0]["train_seconds"])
            print(f"groups {groups}: {seconds[groups][-1]:.1f} s", flush=True)
    record = {
        "dataset": args.dataset,
        "users": args.users,
        "examples": int(lengths.sum()),
        "model": CPU_SIZED,
        "seconds_per_epoch": seconds,
        "device": device_description(device),
        "threads": torch.get_num_threads(),
        "command": "python " + shlex.join(sys.argv),
        "git_commit": git_commit(),
        "date": time.strftime("%Y-%m-%d"),
    }
    path = RESULTS / f"tiger-train-speed-{device.type}.json"
    write_text_atomic(path, json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
