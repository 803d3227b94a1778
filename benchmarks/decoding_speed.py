"""Users per second of TIGER's constrained beam search, on a TIGER-sized synthetic setup.

Catalogue: 12,101 items (Amazon Beauty's size) with 4-level codes, three random levels of 256
plus a collision-breaking fourth level (TIGER's 3x256 RQ-VAE codes + 1 dedup token). Model:
the default ``tiger`` configuration (4+4 layers, model size 128, 4 heads, feed-forward 1024),
random weights (decoding cost does not depend on the weights). Queries: histories of 20
random items, top-20 lists from 20 beams with the history excluded, as evaluation asks.

.venv/bin/python benchmarks/decoding_speed.py [--device cpu] [--batch-size 256] [--seconds 60] \
    [--threads N]

Prints users/s and writes benchmarks/results/decoding-speed-<device type>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from semrec.data import Interactions
from semrec.experiment import device_description
from semrec.models import Query, TrainData
from semrec.models.generative.codes import ItemCodes
from semrec.models.generative.seq2seq import Tiger

sys.path.insert(0, str(Path(__file__).parent))
from record_result import RESULTS, git_commit

N_ITEMS, LEVEL_SIZE, HISTORY = 12_101, 256, 20


def synthetic_codes(rng: np.random.Generator) -> ItemCodes:
    """Three random levels of 256 and a fourth that numbers items sharing the first three."""
    head = rng.integers(0, LEVEL_SIZE, size=(N_ITEMS, 3))
    _, group, counts = np.unique(head, axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    order = np.argsort(group, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    dedup = np.empty(N_ITEMS, dtype=np.int64)
    dedup[order] = np.arange(N_ITEMS) - starts[group[order]]
    return ItemCodes(np.column_stack([head, dedup]), (LEVEL_SIZE,) * 3 + (int(counts.max()),))


def untrained_model(codes: ItemCodes, device: torch.device, rng: np.random.Generator) -> Tiger:
    """A default-sized tiger fitted for one step on 8 users (the catalogue is all 12,101
    items): the weights are as good as random, the decoding work is the real one."""
    users = np.repeat(np.arange(8), HISTORY + 1)
    items = rng.integers(0, N_ITEMS, size=len(users))
    train = Interactions(
        user_index=users,
        item_index=items,
        user_ids=np.arange(8).astype(str).astype(object),
        item_ids=np.arange(N_ITEMS).astype(str).astype(object),
        timestamp=np.tile(np.arange(HISTORY + 1), 8),
    )
    model = Tiger(epochs=1, eval_every=0, beam_size=20)
    model.device = device
    model.item_codes = codes
    return model.fit(TrainData(train))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=256, help="queries per call")
    parser.add_argument("--seconds", type=float, default=60, help="time spent measuring")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    codes = synthetic_codes(rng)
    model = untrained_model(codes, device, rng)

    def batch_query() -> Query:
        return Query.histories(list(rng.integers(0, N_ITEMS, size=(args.batch_size, HISTORY))))

    model.recommend(batch_query(), k=20)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    calls, users, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < args.seconds or calls < 2:
        top = model.recommend(batch_query(), k=20)
        if device.type == "cuda":
            torch.cuda.synchronize()
        assert top.item_index.shape == (args.batch_size, 20)
        calls, users = calls + 1, users + args.batch_size
    elapsed = time.perf_counter() - started
    throughput = users / elapsed
    print(
        f"tiger beam search (beam 20, top 20, history {HISTORY}, {N_ITEMS} items, codes "
        f"{codes.level_sizes}): {throughput:.1f} users/s on {device_description(device)} "
        f"({calls} calls of {args.batch_size} users in {elapsed:.1f} s)"
    )
    record = {
        "benchmark": "tiger constrained beam search throughput",
        "users_per_second": round(throughput, 2),
        "seconds_per_call": round(elapsed / calls, 3),
        "setup": {
            "n_items": N_ITEMS,
            "level_sizes": list(codes.level_sizes),
            "history": HISTORY,
            "beam_size": 20,
            "k": 20,
            "exclude_seen": True,
            "batch_size": args.batch_size,
            "model": model.config.model_dump(exclude={"codes"}),
            "parameters": sum(p.numel() for p in model.module.parameters()),
            "weights": "untrained (one step); decoding cost does not depend on them",
        },
        "calls": calls,
        "seconds": round(elapsed, 1),
        "device": device_description(device),
        "load_average_1min_after": round(os.getloadavg()[0], 2),  # other work on the machine
        "command": shlex.join(["python", *sys.argv]),
        "commit": git_commit(),
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"decoding-speed-{device.type}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
