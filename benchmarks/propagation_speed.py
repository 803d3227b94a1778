"""Seconds for one LightGCN propagation (3 layers, 64 dims) over Gowalla, CSR vs COO, and
for the backward of one batch's row gather (65,536 rows of the node table), torch's indexing
vs semrec's gather_rows.

Both layouts use the symmetric product of semrec.models.graph (backward = Â @ grad).

.venv/bin/python benchmarks/propagation_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from semrec.data import Part
from semrec.data.registry import load_dataset
from semrec.models.graph import Graph, PropagatedEmbeddings, gather_rows


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
    csr = Graph.build(train.user_items, device)
    coo = csr.adjacency.to_sparse_coo().coalesce()
    layouts = {"csr": csr, "coo": Graph(coo, coo, csr.transpose_order)}
    module = PropagatedEmbeddings(train.n_users, train.n_items, 64, n_layers=3, include_ego=True)
    for name, graph in layouts.items():

        def forward_backward(graph=graph):
            users, items = module.propagate(graph)
            (users.sum() + items.sum()).backward()

        def forward(graph=graph):
            with torch.no_grad():
                module.propagate(graph)

        print(
            f"{name}: forward+backward {best_of(args.repeats, forward_backward):.3f} s, "
            f"forward {best_of(args.repeats, forward):.3f} s (best of {args.repeats}, "
            f"{torch.get_num_threads()} threads)"
        )
    table = module.embedding.weight
    rows = torch.from_numpy(np.random.default_rng(0).integers(0, len(table), 65536))
    upstream = torch.ones(len(rows), table.shape[1])
    gathers = {"indexing": lambda: table[rows], "gather_rows": lambda: gather_rows(table, rows)}
    for name, gather in gathers.items():

        def gather_backward(gather=gather):
            table.grad = None
            gather().backward(upstream)

        print(
            f"gather of {len(rows)} rows, forward+backward, {name}: "
            f"{best_of(args.repeats, gather_backward) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
