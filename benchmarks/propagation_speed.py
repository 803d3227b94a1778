"""Seconds for one LightGCN propagation (3 layers, 64 dims) over Gowalla, CSR vs COO.

Both use the symmetric product of semrec.models.graph (backward = Â @ grad).

.venv/bin/python benchmarks/propagation_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from semrec.data import Part
from semrec.data.registry import load_dataset
from semrec.models.graph import LightGCNModule, normalized_adjacency, sparse_tensor


def best_of(repeats: int, step) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dataset = load_dataset("gowalla")
    train = dataset.interactions.select(dataset.given_parts == Part.TRAIN)
    device = torch.device("cpu")
    csr = sparse_tensor(normalized_adjacency(train.user_items), device)
    layouts = {"csr": csr, "coo": csr.to_sparse_coo().coalesce()}
    module = LightGCNModule(train.n_users, train.n_items, embedding_size=64, n_layers=3)
    for name, adjacency in layouts.items():

        def forward_backward(adjacency=adjacency):
            users, items = module.propagate(adjacency)
            (users.sum() + items.sum()).backward()

        def forward(adjacency=adjacency):
            with torch.no_grad():
                module.propagate(adjacency)

        print(
            f"{name}: forward+backward {best_of(args.repeats, forward_backward):.3f} s, "
            f"forward {best_of(args.repeats, forward):.3f} s (best of {args.repeats}, "
            f"{torch.get_num_threads()} threads)"
        )


if __name__ == "__main__":
    main()
