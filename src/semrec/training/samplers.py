"""Vectorized negative sampling over a user x item CSR matrix (no per-sample Python loops)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp


def positive_pairs(user_items: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(user_index, item_index) of every positive cell, in CSR order."""
    users = np.repeat(np.arange(user_items.shape[0]), np.diff(user_items.indptr))
    return users.astype(np.int64), user_items.indices.astype(np.int64)


def sample_negatives(
    user_items: sp.csr_matrix, users: np.ndarray, rng: np.random.Generator, max_rounds: int = 100
) -> np.ndarray:
    """One uniformly drawn item per user that the user has not interacted with.

    Draws all at once and redraws only the collisions; membership is a binary search over the
    sorted keys ``user * n_items + item`` of the positive cells.
    """
    n_items = user_items.shape[1]
    if np.any(np.diff(user_items.indptr)[users] >= n_items):
        raise ValueError("a user has interacted with every item; no negative exists")
    pair_users, pair_items = positive_pairs(user_items)
    positive_keys = pair_users * n_items + pair_items  # sorted: CSR rows in order, sorted indices
    negatives = rng.integers(0, n_items, size=len(users))
    pending = np.arange(len(users))
    for _ in range(max_rounds):
        keys = users[pending] * n_items + negatives[pending]
        found = np.searchsorted(positive_keys, keys)
        found = np.minimum(found, len(positive_keys) - 1)
        collided = positive_keys[found] == keys
        pending = pending[collided]
        if len(pending) == 0:
            return negatives
        negatives[pending] = rng.integers(0, n_items, size=len(pending))
    raise RuntimeError("negative sampling did not converge; the matrix is nearly full")


def bpr_batches(
    user_items: sp.csr_matrix, batch_size: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of (users, positive items, negative items) batches over shuffled positives."""
    users, items = positive_pairs(user_items)
    order = rng.permutation(len(users))
    negatives = sample_negatives(user_items, users[order], rng)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield users[rows], items[rows], negatives[start : start + batch_size]


def n_batches(user_items: sp.csr_matrix, batch_size: int) -> int:
    return -(-user_items.nnz // batch_size)
