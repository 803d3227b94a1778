"""SELFRec's own SimGCL on the LightGCN Gowalla split, scored by semrec's ranking metrics: does
the reference code's test curve fall at the paper's settings, as semrec's does?

    bash benchmarks/peers/setup_selfrec.sh          # SELFRec's files at pinned commits
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/peers/selfrec_simgcl.py \
        --data-dir ../shared/data --epochs 3 --out benchmarks/results/selfrec-simgcl-gowalla.json

Why: at its paper's settings (λ 0.5, ε 0.1, τ 0.2) semrec's SimGCL loses test accuracy epoch
after epoch on Gowalla (benchmarks/README.md, "SimGCL on Gowalla"), while SimGCL's author
reports it rising on another Gowalla split. If SELFRec's code falls the same way on this
split, the decline belongs to the method at these settings on these data, not to semrec.

What runs is SELFRec's code, unchanged (--selfrec-dir, from setup_selfrec.sh): SimGCL.train()
(its loop: a batch of every training pair once per epoch, BPR + its L2 + λ InfoNCE of two
perturbed views, Adam), SimGCL_Encoder (Xavier tables, perturbed propagation, mean of the
layers without the ego layer), its losses, its batch sampler (negatives redrawn until unseen)
and its Interaction class (the normalized adjacency). This harness supplies only what
SimGCL.py imports from the rest of SELFRec's framework: the GraphRecommender base (settings;
after each epoch, the test metrics) and OptionConf (the model's options). It makes ``.cuda()``
a no-op, as SELFRec calls it unconditionally, so the run stays on the CPU. SELFRec's own
evaluation (a Python loop over users) is replaced by semrec's metric functions: full ranking
over all items, each user's training items masked, Recall@20 and NDCG@20, the definitions of
every semrec figure. SELFRec evaluates the same way (all items, training items masked).

Settings: --layers (SELFRec's conf has 2; the paper's Gowalla-less runs used up to 3, and
configs/simgcl-gowalla.yaml has 3), --weight λ 0.5, --noise ε 0.1 (τ 0.2 is fixed in SELFRec's
code), 64 dimensions, batch 2048, Adam lr 1e-3, L2 1e-4 (its reg.lambda), random seed --seed
for Python's, NumPy's and torch's generators. --out is rewritten after every epoch (the curve
so far, "finished": false until the last), so a stopped run keeps what it reached.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from record_result import git_commit
from semrec.atomic import write_text_atomic
from semrec.config import DatasetConfig
from semrec.data.splits import GivenSplit, split
from semrec.evaluation.metrics import mean_metrics, ranking_metrics
from semrec.experiment import DataLocation, prepare_dataset
from semrec.models.base import bool_mask, exclude_cells_, top_k

K = 20


class OptionConf(dict):
    """SELFRec's option string ("-n_layer 3 -lambda 0.5 -eps 0.1") as a mapping."""

    def __init__(self, options: str) -> None:
        words = options.split()
        super().__init__(zip(words[::2], words[1::2], strict=True))


def selfrec_rows(user_items) -> list[list]:
    """SELFRec's data rows: [user, item, rating] with string ids (here semrec's indices)."""
    users, items = user_items.nonzero()
    return [[str(u), str(i), 1.0] for u, i in zip(users.tolist(), items.tolist(), strict=True)]


def install_framework_stand_ins(settings: dict, evaluate) -> None:
    """The modules SimGCL.py imports from SELFRec's framework, and ``.cuda()`` as a no-op."""
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self

    from data.ui_graph import Interaction  # SELFRec's

    class GraphRecommender:
        def __init__(self, conf, training_set, test_set) -> None:
            self.config = conf
            self.data = Interaction(conf, training_set, test_set)
            self.emb_size = settings["embedding_size"]
            self.maxEpoch = settings["epochs"]
            self.batch_size = settings["batch_size"]
            self.lRate = settings["learning_rate"]
            self.reg = settings["weight_decay"]

        def fast_evaluation(self, epoch: int) -> None:
            evaluate(self, epoch)
            self.save()  # SimGCL.train() ends by reading the saved embeddings

    for name, attributes in {
        "base.graph_recommender": {"GraphRecommender": GraphRecommender},
        "util.conf": {"OptionConf": OptionConf},
    }.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--selfrec-dir", type=Path, default=Path("/work/peers/SELFRec"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--weight", type=float, default=0.5, help="λ")
    parser.add_argument("--noise", type=float, default=0.1, help="ε")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not (args.selfrec_dir / "model" / "graph" / "SimGCL.py").is_file():
        sys.exit(f"{args.selfrec_dir}: no SELFRec files; run benchmarks/peers/setup_selfrec.sh")
    sys.path.insert(0, str(args.selfrec_dir))
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    dataset = prepare_dataset(DatasetConfig(name="gowalla"), DataLocation(args.data_dir))
    data_split = split(dataset, GivenSplit())
    train = data_split.train.user_items.tocsr()
    test = data_split.test.user_items.tocsr()
    training_set, test_set = selfrec_rows(train), selfrec_rows(test)
    evaluated = np.flatnonzero(np.diff(test.indptr))

    settings = {
        "embedding_size": 64,
        "epochs": args.epochs,
        "batch_size": 2048,
        "learning_rate": 1e-3,
        "weight_decay": 1e-4,
    }
    options = f"-n_layer {args.layers} -lambda {args.weight} -eps {args.noise}"
    record = {
        "what": "SELFRec's SimGCL (its code, semrec's metrics) on the LightGCN Gowalla split",
        "command": " ".join(["python", *sys.argv]),
        "git_commit": git_commit(),
        "selfrec_options": options,
        "settings": settings | {"temperature": 0.2, "seed": args.seed},
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "epochs": [],
        "finished": False,
    }
    started = time.perf_counter()
    last_evaluated = [started]

    def evaluate(recommender, epoch: int) -> None:
        training_seconds = time.perf_counter() - last_evaluated[0]
        data = recommender.data
        users = recommender.user_emb[[data.user[str(u)] for u in range(train.shape[0])]]
        items = recommender.item_emb[[data.item[str(i)] for i in range(train.shape[1])]]
        per_user = []
        for start in range(0, len(evaluated), 2048):
            batch = evaluated[start : start + 2048]
            scores = users[torch.from_numpy(batch)] @ items.T
            exclude_cells_(scores, train[batch])
            hits = bool_mask(test[batch], scores.device).gather(1, top_k(scores, K).item_index)
            n_relevant = torch.from_numpy(np.diff(test[batch].indptr))
            per_user.append(ranking_metrics(hits, n_relevant, [K]))
        metrics = mean_metrics(
            {name: torch.cat([p[name] for p in per_user]) for name in per_user[0]}
        )
        entry = {
            "epoch": epoch + 1,
            "train_seconds": round(training_seconds, 1),
            f"test_recall@{K}": metrics[f"recall@{K}"],
            f"test_ndcg@{K}": metrics[f"ndcg@{K}"],
        }
        record["epochs"].append(entry)
        record["finished"] = epoch + 1 == args.epochs
        write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")
        print(entry, flush=True)
        last_evaluated[0] = time.perf_counter()

    install_framework_stand_ins(settings, evaluate)
    from model.graph.SimGCL import SimGCL  # SELFRec's

    conf = {"SimGCL": options}
    SimGCL(conf, training_set, test_set).train()
    print(f"done in {time.perf_counter() - started:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
