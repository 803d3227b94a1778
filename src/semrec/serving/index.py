"""Top-k retrieval for serving: exact scoring by the model, or a FAISS vector index.

Exact retrieval asks the model for every item's score (``Recommender.score``: a matrix
product for embedding models, history x B for EASE), sets excluded items to -inf and takes
the top k; it answers every kind of query.

A vector index only fits models whose score is an inner product ⟨user vector, item vector⟩.
Such a model exposes ``user_item_vectors(query) -> (user_vectors [B, d], item_vectors
[n_items, d])`` (the graph models and MF-BPR do). :class:`FaissRetrieval` puts the item
vectors in an HNSW graph (``faiss.IndexHNSWFlat``, inner-product metric: approximate, unlike
``IndexFlatIP``), fetches k + (the query's excluded items) candidates and drops the excluded
ones. Its recall@k against exact retrieval is measured on a sample of users when it is built
(:func:`measure_recall`) and reported with it.

:func:`choose_retrieval` picks FAISS automatically for catalogues of at least
``FAISS_MIN_ITEMS`` items when the model has vectors, exact retrieval otherwise; the choice
can be forced.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from semrec.errors import ModelError
from semrec.models.base import Query, Recommender, TopK, exclude_cells_, top_k

log = logging.getLogger(__name__)

RetrievalChoice = Literal["auto", "exact", "faiss"]
#: catalogues at least this large are served from a FAISS index when the model has vectors
FAISS_MIN_ITEMS = 100_000
#: users sampled to measure the index's recall against exact retrieval
RECALL_SAMPLE_USERS = 1000


def has_vectors(model: Recommender) -> bool:
    """True when the model's score is an inner product of user and item vectors it exposes."""
    return callable(getattr(model, "user_item_vectors", None))


def top_k_excluding(scores: torch.Tensor, k: int, exclude: sp.spmatrix | None) -> TopK:
    """Top-k per row of ``scores`` (modified in place) after setting the nonzero cells of
    ``exclude`` (same shape) to -inf."""
    if exclude is not None and exclude.nnz:
        exclude_cells_(scores, exclude)
    return top_k(scores, k)


def top_k_of_candidates(
    item_index: np.ndarray, scores: np.ndarray, k: int, exclude: sp.csr_matrix | None
) -> TopK:
    """The best k of per-row candidates (item indices [B, m], -1 for none, and their scores),
    dropping the cells of ``exclude`` [B, n_items]; rows short of k end in -inf scores."""
    item_index = np.asarray(item_index, dtype=np.int64)
    scores = np.array(scores, dtype=np.float32)
    scores[item_index < 0] = -np.inf
    if exclude is not None and exclude.nnz:
        n_items = exclude.shape[1]
        exclude = exclude.tocsr()
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        excluded_keys = rows * n_items + exclude.indices
        keys = np.arange(len(item_index))[:, None] * n_items + np.maximum(item_index, 0)
        scores[np.isin(keys, excluded_keys)] = -np.inf
    # best first; equal scores by lower item index (as models.base.top_k orders them)
    order = np.lexsort((item_index, -scores), axis=1)[:, :k]
    return TopK(
        item_index=torch.from_numpy(np.take_along_axis(item_index, order, axis=1)),
        scores=torch.from_numpy(np.take_along_axis(scores, order, axis=1)),
    )


class Retrieval(ABC):
    """Answers ``top_k(query, k, exclude)``: each query's best k items outside ``exclude``."""

    kind: str

    def __init__(self, model: Recommender) -> None:
        self.model = model

    @abstractmethod
    def top_k(self, query: Query, k: int, exclude: sp.csr_matrix | None) -> TopK:
        """``exclude`` is a [len(query), n_items] matrix whose nonzero cells are left out
        (the caller adds the seen items / the history to it)."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}


class ExactRetrieval(Retrieval):
    """Every item scored by the model, then the top k (``torch.topk``)."""

    kind = "exact"

    def top_k(self, query: Query, k: int, exclude: sp.csr_matrix | None) -> TopK:
        k = min(k, self.model.n_items)
        if self.model.scores_all_items:
            with torch.no_grad():
                return top_k_excluding(self.model.score(query), k, exclude)
        # a model that generates ranked lists: ask for enough to survive the exclusions
        extra = 0 if exclude is None else int(np.diff(exclude.tocsr().indptr).max(initial=0))
        ranked = self.model.recommend(query, min(k + extra, self.model.n_items))
        return top_k_of_candidates(
            ranked.item_index.cpu().numpy(), ranked.scores.cpu().numpy(), k, exclude
        )


def import_faiss():
    try:
        import faiss
    except ImportError:
        raise ModelError(
            "FAISS retrieval needs the faiss-cpu package: pip install 'semrec[serve]'"
        ) from None
    return faiss


class FaissRetrieval(Retrieval):
    """Approximate top-k from an HNSW index over the model's item vectors (inner product).

    Queries made of users go to the index; histories (and anything else) fall back to exact
    retrieval. ``neighbours`` is HNSW's M, ``ef_search`` its search breadth (raised to the
    number of candidates fetched).
    """

    kind = "faiss"

    def __init__(
        self,
        model: Recommender,
        neighbours: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
    ) -> None:
        super().__init__(model)
        if not has_vectors(model):
            raise ModelError(
                f"{model.name} has no user/item vectors (its score is not an inner product), "
                "so it cannot be served from a vector index: use exact retrieval"
            )
        faiss = import_faiss()
        self._faiss = faiss
        self.exact = ExactRetrieval(model)
        self.neighbours, self.ef_search = neighbours, ef_search
        _, items = model.user_item_vectors(Query.users([0]))
        vectors = np.ascontiguousarray(items.detach().cpu().numpy(), dtype=np.float32)
        started = time.perf_counter()
        self.index = faiss.IndexHNSWFlat(vectors.shape[1], neighbours, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = ef_construction
        self.index.add(vectors)
        self.build_seconds = time.perf_counter() - started
        self.recall: dict[str, Any] | None = None

    def search(self, user_vectors: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw index search: (scores, item indices) [B, fetch]; -1 where none was found."""
        params = self._faiss.SearchParametersHNSW(efSearch=max(self.ef_search, fetch))
        vectors = np.ascontiguousarray(user_vectors, dtype=np.float32)
        return self.index.search(vectors, fetch, params=params)

    def top_k(self, query: Query, k: int, exclude: sp.csr_matrix | None) -> TopK:
        if query.user_index is None or query.history is not None:
            return self.exact.top_k(query, k, exclude)
        n_items = self.model.n_items
        k = min(k, n_items)
        with torch.no_grad():
            users, _ = self.model.user_item_vectors(query)
        extra = 0 if exclude is None else int(np.diff(exclude.tocsr().indptr).max(initial=0))
        scores, items = self.search(users.cpu().numpy(), min(k + extra, n_items))
        return top_k_of_candidates(items, scores, k, exclude)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "index": f"HNSWFlat inner product (M={self.neighbours}, efSearch={self.ef_search})",
            "build_seconds": round(self.build_seconds, 3),
            **({"recall_vs_exact": self.recall} if self.recall else {}),
        }


def measure_recall(
    model: Recommender,
    approximate: Retrieval,
    k: int = 10,
    n_users: int = RECALL_SAMPLE_USERS,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Recall@k of ``approximate`` against exact retrieval on a sample of users (seen items
    excluded), and the seconds each took: |approximate top-k ∩ exact top-k| / |exact top-k|."""
    exact = ExactRetrieval(model)
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(model.n_users, size=min(n_users, model.n_users), replace=False))
    found = total = 0
    seconds = {"exact": 0.0, "approximate": 0.0}
    for start in range(0, len(users), batch_size):
        query = Query.users(users[start : start + batch_size])
        seen = model.history_matrix(query)
        tops = {}
        for name, retrieval in (("exact", exact), ("approximate", approximate)):
            started = time.perf_counter()
            tops[name] = retrieval.top_k(query, k, seen)
            seconds[name] += time.perf_counter() - started
        exact_items = tops["exact"].item_index.cpu().numpy()
        valid = np.isfinite(tops["exact"].scores.cpu().numpy())
        approximate_items = tops["approximate"].item_index.cpu().numpy()
        for row in range(len(exact_items)):
            truth = set(exact_items[row][valid[row]].tolist())
            found += len(truth & set(approximate_items[row].tolist()))
            total += len(truth)
    return {
        f"recall@{k}": round(found / max(total, 1), 4),
        "users": len(users),
        "exact_seconds": round(seconds["exact"], 4),
        "approximate_seconds": round(seconds["approximate"], 4),
    }


def choose_retrieval(
    model: Recommender,
    choice: RetrievalChoice = "auto",
    faiss_min_items: int = FAISS_MIN_ITEMS,
    recall_users: int = RECALL_SAMPLE_USERS,
) -> Retrieval:
    """Exact retrieval, or FAISS when asked, or (``auto``) for catalogues of at least
    ``faiss_min_items`` items when the model has vectors and faiss is installed. A FAISS
    index has its recall@10 against exact retrieval measured on ``recall_users`` users."""
    if choice not in ("auto", "exact", "faiss"):
        raise ModelError(f"retrieval must be auto, exact or faiss, got {choice!r}")
    use_faiss = choice == "faiss"
    if choice == "auto" and has_vectors(model) and model.n_items >= faiss_min_items:
        try:
            import_faiss()
            use_faiss = True
        except ModelError as error:
            log.warning("%s; serving %d items with exact retrieval", error, model.n_items)
    if not use_faiss:
        return ExactRetrieval(model)
    retrieval = FaissRetrieval(model)
    if recall_users > 0:
        retrieval.recall = measure_recall(model, retrieval, k=10, n_users=recall_users)
        log.info("FAISS index: %s", retrieval.recall)
    return retrieval
