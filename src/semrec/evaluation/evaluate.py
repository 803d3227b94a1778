"""Batched full-ranking evaluation: every item is a candidate (or every item of the split's
``candidate_items``, e.g. the held-out items of a cold-start split), seen items are masked."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from semrec.data.splits import Split
from semrec.errors import ModelError
from semrec.evaluation.beyond import beyond_accuracy
from semrec.evaluation.fairness import item_fairness
from semrec.evaluation.metrics import mean_metrics, ranking_metrics
from semrec.evaluation.slices import slice_metrics
from semrec.models.base import Query, Recommender, bool_mask, exclude_cells_, top_k
from semrec.progress import progress


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Mean metrics, per-user values (for slices and significance tests) and the protocol."""

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    user_index: np.ndarray
    top_items: np.ndarray
    protocol: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: head/tail and cold/warm slices (semrec.evaluation.slices), e.g. "tail:recall@10"
    slices: dict[str, float] = field(default_factory=dict)
    #: training users per catalogue item (the popularity the slices and plots use)
    item_popularity: np.ndarray | None = None
    #: training interactions of each evaluated user, aligned with ``user_index``
    user_train_counts: np.ndarray | None = None
    #: bool ``[n_users, max_k]``: is the item at each rank relevant (metric@K curves)
    hits: np.ndarray | None = None
    #: relevant items of each evaluated user
    n_relevant: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "slices": self.slices,
            "n_users": len(self.user_index),
            "seconds": round(self.seconds, 3),
            "protocol": self.protocol,
        }


def evaluation_histories(split: Split, part: str) -> list[np.ndarray]:
    """What a history-reading model sees of each user: their training items in time order,
    followed at test time by their validation items (leave-one-out: the second-last item
    precedes the last)."""
    histories = split.train.sequences()
    if part == "test" and split.valid is not None:
        valid = split.valid.sequences()
        histories = [np.concatenate([h, v]) for h, v in zip(histories, valid, strict=True)]
    return histories


def evaluate(
    model: Recommender,
    split: Split,
    ks: Sequence[int] = (10, 20),
    part: Literal["test", "valid"] = "test",
    batch_size: int = 1024,
    exclude_seen: bool = True,
) -> EvaluationResult:
    """Rank all items for every user with at least one ``part`` item and score the lists.

    Excluded from each user's ranking: their training items, and at test time also their
    validation items (``exclude_seen=False`` keeps them, for repeat-consumption protocols).
    Metrics average over the evaluated users.

    When the split has ``candidate_items`` (a cold-start split ranking its held-out items),
    only those items are ranked, exactly as if every other item scored -inf: relevant items
    are the user's ``part`` items among the candidates, users without one are not evaluated,
    and the beyond-accuracy measures (coverage, Gini, novelty, ARP, and the item fairness
    measures of :mod:`semrec.evaluation.fairness`) take the candidate set as the catalogue.
    ``top_items`` always holds catalogue item indices. ``slices`` holds the head/tail and
    cold/warm measures of :mod:`semrec.evaluation.slices`.
    """
    started = time.perf_counter()
    target = split.test if part == "test" else split.valid
    if target is None:
        raise ModelError("the split has no validation part")
    if (model.n_users, model.n_items) != (split.train.n_users, split.train.n_items):
        raise ModelError(
            f"{model.name} was trained on {model.n_users} users x {model.n_items} items, "
            f"the split has {split.train.n_users} x {split.train.n_items}: not the same data"
        )
    candidates = split.candidate_items
    cold_items = split.protocol.get("protocol") == "cold_items"
    candidate_kind = "held-out items" if cold_items else "candidate items"
    if candidates is None and max(ks) > model.n_items:
        raise ModelError(f"K={max(ks)} exceeds the catalogue size ({model.n_items} items)")
    if candidates is not None and max(ks) > len(candidates):
        raise ModelError(
            f"K={max(ks)} exceeds the {len(candidates)} {candidate_kind} this split ranks "
            "among; use a smaller K" + (" or a larger item_ratio" if cold_items else "")
        )
    relevant = target.user_items
    excluded = split.train.user_items
    if part == "test" and split.valid is not None:
        excluded = excluded + split.valid.user_items
    if candidates is not None:  # columns = candidates, in order: a local index per candidate
        relevant, excluded = relevant[:, candidates], excluded[:, candidates]
        candidate_index = torch.tensor(candidates)
    n_relevant_all = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant_all)
    histories = evaluation_histories(split, part) if model.accepts_history else None
    if not model.scores_all_items and candidates is not None:
        raise ModelError(f"{model.name} ranks by generated lists; it cannot rank a candidate set")
    max_k = max(ks)
    per_user_batches: list[dict[str, torch.Tensor]] = []
    top_items_batches: list[np.ndarray] = []
    hits_batches: list[np.ndarray] = []
    batches = range(0, len(users), batch_size)
    with torch.no_grad(), progress(f"Evaluating {model.name}", total=len(batches)) as advance:
        for start in batches:
            batch_users = users[start : start + batch_size]
            query = (
                Query.users(batch_users)
                if histories is None
                else Query(batch_users, [histories[u] for u in batch_users])
            )
            if model.scores_all_items:
                scores = model.score(query)
                device = scores.device
                if candidates is not None:
                    candidate_index = candidate_index.to(device)
                    scores = scores[:, candidate_index]
                if exclude_seen:
                    exclude_cells_(scores, excluded[batch_users])
                ranked = top_k(scores, max_k).item_index
            else:  # generated lists; with histories, the model excludes exactly `excluded`
                ranked = model.recommend(query, max_k, exclude_seen=exclude_seen).item_index
                device = ranked.device
            hits = bool_mask(relevant[batch_users], device).gather(1, ranked)
            n_relevant = torch.from_numpy(n_relevant_all[batch_users]).to(device)
            per_user = ranking_metrics(hits, n_relevant, ks)
            per_user_batches.append({name: value.cpu() for name, value in per_user.items()})
            top_items_batches.append(ranked.cpu().numpy())
            hits_batches.append(hits.cpu().numpy())
            advance()
    per_user = (
        {
            name: torch.cat([batch[name] for batch in per_user_batches]).numpy()
            for name in per_user_batches[0]
        }
        if per_user_batches
        else {}
    )
    top_items = (
        np.concatenate(top_items_batches)
        if top_items_batches
        else np.empty((0, max_k), dtype=np.int64)
    )
    item_popularity = split.train.item_counts()
    if candidates is not None:  # the candidates are the catalogue; back to catalogue indices
        item_popularity = item_popularity[candidates]
    metrics = mean_metrics({name: torch.from_numpy(v) for name, v in per_user.items()})
    metrics.update(beyond_accuracy(top_items, item_popularity, split.train.n_users, ks))
    metrics.update(item_fairness(top_items, len(item_popularity), ks))
    user_train_counts = split.train.user_counts()[users]
    hits_all = np.concatenate(hits_batches) if hits_batches else np.zeros((0, max_k), dtype=bool)
    slices, slice_protocol = slice_metrics(
        per_user, top_items, relevant[users], item_popularity, user_train_counts, ks, hits_all
    )
    if candidates is not None:
        top_items = candidates[top_items]
        ranking = f"ranked among {len(candidates)} {candidate_kind}"
    else:
        ranking = "full"
    protocol = {
        **split.protocol,
        "part": part,
        "ranking": ranking,
        "excluded": ("train+valid" if part == "test" and split.valid is not None else "train")
        if exclude_seen
        else "none",
        "ks": list(ks),
        "evaluated_users": len(users),
        "slices": slice_protocol,
    }
    return EvaluationResult(
        metrics=metrics,
        per_user=per_user,
        user_index=users,
        top_items=top_items,
        protocol=protocol,
        seconds=time.perf_counter() - started,
        slices=slices,
        item_popularity=split.train.item_counts(),
        user_train_counts=user_train_counts,
        hits=hits_all,
        n_relevant=n_relevant_all[users],
    )
