"""Vectorized negative sampling over a user x item CSR matrix (no per-sample Python loops)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import scipy.sparse as sp


def positive_pairs(user_items: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(user_index, item_index) of every positive cell, in CSR order."""
    users = np.repeat(np.arange(user_items.shape[0]), np.diff(user_items.indptr))
    return users.astype(np.int64), user_items.indices.astype(np.int64)


def user_uniform_pairs(
    user_items: sp.csr_matrix, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """As many (user, item) draws as there are positive cells, each a uniformly drawn user
    with training items and one of that user's items, uniformly: the positives of the official
    LightGCN code (``UniformSample_original``) and, batch by batch, of the official NGCF code.

    Every user then carries the same weight in an epoch's loss, as in the user-averaged
    metrics, where pair sampling weights users by their number of items.
    """
    degrees = np.diff(user_items.indptr)
    active = np.flatnonzero(degrees)
    users = active[rng.integers(0, len(active), size=user_items.nnz)]
    offsets = rng.integers(0, degrees[users])
    return users.astype(np.int64), user_items.indices[user_items.indptr[users] + offsets].astype(
        np.int64
    )


def known_items(user_items: sp.csr_matrix) -> np.ndarray:
    """Indices of the items with at least one training interaction (the negatives' pool)."""
    return np.flatnonzero(np.bincount(user_items.indices, minlength=user_items.shape[1]))


def sample_negatives(
    user_items: sp.csr_matrix, users: np.ndarray, rng: np.random.Generator, max_rounds: int = 100
) -> np.ndarray:
    """One uniformly drawn item per user that the user has not interacted with, among the
    items that have training interactions.

    Items without any (e.g. the held-out items of a cold-start split) are never drawn: the
    training process must not learn anything about them, not even that they are negatives.
    Draws all at once and redraws only the collisions; membership is a binary search over the
    sorted keys ``user * n_items + item`` of the positive cells.
    """
    n_items = user_items.shape[1]
    if not user_items.has_sorted_indices:  # the binary search needs sorted keys
        user_items = user_items.sorted_indices()
    known = known_items(user_items)
    if np.any(np.diff(user_items.indptr)[users] >= len(known)):
        raise ValueError("a user has interacted with every item; no negative exists")
    pair_users, pair_items = positive_pairs(user_items)
    positive_keys = pair_users * n_items + pair_items  # sorted: CSR rows in order, sorted indices
    negatives = known[rng.integers(0, len(known), size=len(users))]
    pending = np.arange(len(users))
    for _ in range(max_rounds):
        keys = users[pending] * n_items + negatives[pending]
        found = np.searchsorted(positive_keys, keys)
        found = np.minimum(found, len(positive_keys) - 1)
        collided = positive_keys[found] == keys
        pending = pending[collided]
        if len(pending) == 0:
            return negatives
        negatives[pending] = known[rng.integers(0, len(known), size=len(pending))]
    raise RuntimeError("negative sampling did not converge; the matrix is nearly full")


def bpr_batches(
    user_items: sp.csr_matrix,
    batch_size: int,
    rng: np.random.Generator,
    negatives_per_pair: int = 1,
    shared: bool = False,
    positives: Literal["pairs", "users"] = "pairs",
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of (users, positive items, negative items) batches over shuffled positives:
    every positive pair once (``positives="pairs"``) or as many user-uniform draws
    (``"users"``, :func:`user_uniform_pairs`).

    With one negative per pair the negatives are a vector drawn for the whole epoch; with
    more they are a [batch, negatives_per_pair] matrix drawn batch by batch (bounded memory),
    each a non-interacted item of its user. ``shared`` draws one row [1, negatives_per_pair]
    of uniform items for the whole batch instead (a sampled item may be a positive of some
    user in the batch; at recommendation densities that is rare).
    """
    if positives == "users":
        users, items = user_uniform_pairs(user_items, rng)
    else:
        users, items = positive_pairs(user_items)
    order = rng.permutation(len(users))
    if negatives_per_pair == 1:
        negatives = sample_negatives(user_items, users[order], rng)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        if negatives_per_pair == 1:
            yield users[rows], items[rows], negatives[start : start + batch_size]
        elif shared:
            known = known_items(user_items)
            drawn = known[rng.integers(0, len(known), size=(1, negatives_per_pair))]
            yield users[rows], items[rows], drawn
        else:
            drawn = sample_negatives(user_items, np.repeat(users[rows], negatives_per_pair), rng)
            yield users[rows], items[rows], drawn.reshape(len(rows), negatives_per_pair)


def n_batches(user_items: sp.csr_matrix, batch_size: int) -> int:
    return -(-user_items.nnz // batch_size)
