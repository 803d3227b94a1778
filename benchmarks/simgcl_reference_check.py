"""semrec's SimGCL against a separate minimal SimGCL written from the reference code's
description (SELFRec's PyTorch SimGCL), on the same split: do their learning curves agree?

.venv/bin/python benchmarks/simgcl_reference_check.py --data-dir ../shared/data \
    [--dataset ml-100k] [--epochs 30] [--every 5] [--contrastive-weights 0 0.5] [--noise 0.1] \
    [--layers 3] [--skip-minimal] [--threads 1] [--out FILE]

Why: at the paper's settings semrec's SimGCL loses accuracy epoch after epoch on ML-100K and
Gowalla, while without its contrastive term (λ = 0) it learns like LightGCN. If the separate
implementation shows the same, the decline belongs to the method at these settings, not to a
semrec bug. The separate one shares nothing with semrec's model code: its own adjacency
(COO), user and item tables each with Xavier initialisation, every training pair once an
epoch in shuffled batches, negatives redrawn until unseen, BPR on the final embeddings +
weight_decay · (‖U‖_F + ‖P‖_F) / batch, λ · (InfoNCE of the batch's unique users + of its unique
positive items) between two noisy propagations. Both: --layers layers (the paper's 3), 64 dims,
batch 2048, Adam lr 1e-3, L2 1e-4, ε --noise (the paper's 0.1), τ 0.2, the per-user 80/20
random split (seed 2024) of --dataset. Both are scored by the same function: test Recall@20
over all items, each user's training items masked, |test items| as the denominator. Writes
--out, by default benchmarks/results/simgcl-reference-check-<dataset>.json. With
--skip-minimal only semrec's SimGCL trains: a sweep of settings, once the two are known to agree.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from semrec.atomic import write_text_atomic
from semrec.config import DatasetConfig
from semrec.data.splits import RandomSplit, split
from semrec.experiment import DataLocation, prepare_dataset
from semrec.models import TrainData
from semrec.models.graph import SimGCL

sys.path.insert(0, str(Path(__file__).parent))
from record_result import RESULTS, git_commit

SETTINGS = {"embedding_size": 64, "n_layers": 3, "batch_size": 2048, "learning_rate": 1e-3}
WEIGHT_DECAY, TEMPERATURE, K = 1e-4, 0.2, 20


def recall_at_k(users: torch.Tensor, items: torch.Tensor, train, test) -> float:
    """Mean Recall@K over the users with test items; training items masked."""
    evaluated = np.flatnonzero(np.diff(test.indptr))
    scores = (users[evaluated] @ items.T).numpy()
    masked = train[evaluated].nonzero()
    scores[masked] = -np.inf
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    relevant = test[evaluated]
    hits = np.take_along_axis(relevant.toarray(), top, axis=1).sum(axis=1)
    return float(np.mean(hits / np.diff(relevant.indptr)))


class MinimalSimGCL:
    """The separate implementation (module docstring)."""

    def __init__(self, train: sp.csr_matrix, seed: int, noise: float, n_layers: int) -> None:
        self.train, (self.n_users, self.n_items) = train, train.shape
        self.noise, self.n_layers = noise, n_layers
        adjacency = sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float32)
        degree = np.asarray(adjacency.sum(axis=1)).ravel()
        scale = sp.diags(np.where(degree > 0, degree, 1.0) ** -0.5)
        coo = (scale @ adjacency @ scale).tocoo()
        indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        values = torch.from_numpy(coo.data.astype(np.float32))
        self.adjacency = torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=True)
        self.adjacency = self.adjacency.coalesce()
        torch.manual_seed(seed)
        size = SETTINGS["embedding_size"]
        self.users = torch.nn.Parameter(
            torch.nn.init.xavier_uniform_(torch.empty(self.n_users, size))
        )
        self.items = torch.nn.Parameter(
            torch.nn.init.xavier_uniform_(torch.empty(self.n_items, size))
        )
        self.optimizer = torch.optim.Adam([self.users, self.items], lr=SETTINGS["learning_rate"])
        self.rng = np.random.default_rng(seed)

    def propagate(self, noisy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        layer, layers = torch.cat([self.users, self.items]), []
        for _ in range(self.n_layers):
            layer = torch.sparse.mm(self.adjacency, layer)
            if noisy:
                direction = F.normalize(torch.rand_like(layer), dim=-1)
                layer = layer + torch.sign(layer) * direction * self.noise
            layers.append(layer)
        final = torch.stack(layers).mean(dim=0)
        return final[: self.n_users], final[self.n_users :]

    def negatives(self, users: np.ndarray) -> np.ndarray:
        drawn = self.rng.integers(0, self.n_items, len(users))
        while True:
            seen = np.asarray(self.train[users, drawn]).ravel() > 0
            if not seen.any():
                return drawn
            drawn[seen] = self.rng.integers(0, self.n_items, int(seen.sum()))

    def epoch(self, contrastive_weight: float) -> None:
        rows, cols = self.train.nonzero()
        order = self.rng.permutation(len(rows))
        for start in range(0, len(order), SETTINGS["batch_size"]):
            batch = order[start : start + SETTINGS["batch_size"]]
            users, positives = rows[batch], cols[batch]
            negatives = self.negatives(users)
            user_final, item_final = self.propagate()
            u, p, n = user_final[users], item_final[positives], item_final[negatives]
            margin = (u * p).sum(dim=1) - (u * n).sum(dim=1)
            loss = -torch.log(1e-8 + torch.sigmoid(margin)).mean()
            loss = loss + WEIGHT_DECAY * (torch.norm(u) + torch.norm(p)) / len(batch)
            if contrastive_weight:
                unique_users = torch.unique(torch.from_numpy(users))
                unique_items = torch.unique(torch.from_numpy(positives))
                users_a, items_a = self.propagate(noisy=True)
                users_b, items_b = self.propagate(noisy=True)
                loss = loss + contrastive_weight * (
                    info_nce(users_a[unique_users], users_b[unique_users])
                    + info_nce(items_a[unique_items], items_b[unique_items])
                )
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()


def info_nce(view_a: torch.Tensor, view_b: torch.Tensor) -> torch.Tensor:
    view_a, view_b = F.normalize(view_a, dim=1), F.normalize(view_b, dim=1)
    positive = torch.exp((view_a * view_b).sum(dim=1) / TEMPERATURE)
    total = torch.exp(view_a @ view_b.T / TEMPERATURE).sum(dim=1)
    return -torch.log(positive / total).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--contrastive-weights", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--noise", type=float, default=0.1, help="ε")
    parser.add_argument("--layers", type=int, default=SETTINGS["n_layers"])
    parser.add_argument(
        "--skip-minimal", action="store_true", help="train only semrec's SimGCL (a setting sweep)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = SETTINGS | {"n_layers": args.layers}
    torch.set_num_threads(args.threads)
    dataset = prepare_dataset(DatasetConfig(name=args.dataset), DataLocation(args.data_dir))
    data_split = split(dataset, RandomSplit())
    train = data_split.train.user_items.tocsr().astype(np.float32)
    test = data_split.test.user_items.tocsr()
    curves: dict[str, dict[str, list[float]]] = {}
    for weight in args.contrastive_weights:
        started = time.perf_counter()
        semrec_curve: list[float] = []
        model = SimGCL(
            **settings,
            epochs=args.epochs,
            eval_every=args.every,
            weight_decay=WEIGHT_DECAY,
            contrastive_weight=weight,
            noise=args.noise,
            temperature=TEMPERATURE,
            seed=args.seed,
        )

        def monitor(model: SimGCL = model, curve: list[float] = semrec_curve) -> dict[str, float]:
            curve.append(recall_at_k(*model.final_embeddings(), train, test))
            return {"test_recall@20": curve[-1]}

        model.fit(TrainData(data_split.train, monitor=monitor))
        curves[str(weight)] = {"semrec": semrec_curve}
        if not args.skip_minimal:
            minimal = MinimalSimGCL(train, args.seed, args.noise, args.layers)
            curves[str(weight)]["minimal"] = minimal_curve = []
            for epoch in range(1, args.epochs + 1):
                minimal.epoch(weight)
                if epoch % args.every == 0:
                    with torch.no_grad():
                        minimal_curve.append(recall_at_k(*minimal.propagate(), train, test))
        seconds = time.perf_counter() - started
        print(f"λ {weight} ({seconds:.0f} s), test Recall@{K} every {args.every} epochs:")
        print("  semrec  " + " ".join(f"{v:.4f}" for v in semrec_curve))
        if not args.skip_minimal:
            print("  minimal " + " ".join(f"{v:.4f}" for v in minimal_curve))
        sys.stdout.flush()
    record = {
        "dataset": args.dataset,
        "split": "random 80/20 per user, seed 2024",
        "settings": {
            **settings,
            "weight_decay": WEIGHT_DECAY,
            "noise": args.noise,
            "temperature": TEMPERATURE,
        },
        "epochs": list(range(args.every, args.epochs + 1, args.every)),
        "test_recall@20": curves,
        "threads": args.threads,
        "command": "python " + shlex.join(sys.argv),
        "git_commit": git_commit(),
        "date": time.strftime("%Y-%m-%d"),
    }
    path = args.out or RESULTS / f"simgcl-reference-check-{args.dataset}.json"
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
