"""Seconds for the parts of one SimGCL training step over Gowalla's training graph.

One batch of ``--batch-size`` training pairs (as ``positives: pairs`` draws them), the
paper's model (3 layers, 64 dims): the clean propagation, one noisy view's propagation,
InfoNCE over the batch's unique users (forward + backward each), and the whole step
(``SimGCL._batch_terms``, BPR, backward) with the contrastive term on and off (λ 0 skips the
noisy views). Best of ``--repeats``.

OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simgcl_step_time.py --data-dir ../shared/data \
    [--batch-size 8192] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from propagation_speed import best_of
from semrec.data.registry import load_dataset
from semrec.data.splits import GivenSplit, split
from semrec.models.graph import SimGCL
from semrec.training.losses import bpr_loss, info_nce
from semrec.training.samplers import bpr_batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train = split(load_dataset("gowalla", args.data_dir), GivenSplit()).train
    model = SimGCL(batch_size=args.batch_size)
    model.user_ids, model.item_ids, model.device = train.user_ids, train.item_ids, device
    model.graph = model._graph(train.user_items)
    model.module = model._module().to(device)
    batch = next(bpr_batches(train.user_items, args.batch_size, np.random.default_rng(0)))
    users, positives, negatives = (torch.from_numpy(a).to(device) for a in batch)
    unique_users = torch.unique(users)
    module, graph, config = model.module, model.graph, model.config

    def backward(tensors) -> None:
        sum(t.sum() for t in tensors).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    def whole_step(weight: float) -> None:
        model.config = model.config.model_copy(update={"contrastive_weight": weight})
        positive_scores, negative_scores, extra = model._batch_terms(users, positives, negatives)
        backward([bpr_loss(positive_scores, negative_scores) + extra])

    view_a, view_b = (
        torch.randn(len(unique_users), config.embedding_size, device=device, requires_grad=True)
        for _ in range(2)
    )
    parts = {
        "clean propagation": lambda: backward(module.propagate(graph)),
        "one noisy view's propagation": lambda: backward(
            module.propagate(graph, noise=config.noise)
        ),
        f"InfoNCE over {len(unique_users)} users": lambda: backward(
            [info_nce(view_a, view_b, config.temperature)]
        ),
        "whole step, λ 0": lambda: whole_step(0.0),
        "whole step, λ 0.5": lambda: whole_step(0.5),
    }
    print(
        f"batch {args.batch_size}: {len(unique_users)} unique users, "
        f"{len(torch.unique(positives))} unique items; {device}, {args.threads} threads"
    )
    for name, step in parts.items():
        step()  # warm-up
        print(f"{name}: {best_of(args.repeats, step) * 1000:.0f} ms (forward + backward)")


if __name__ == "__main__":
    main()
