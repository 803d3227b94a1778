r"""Metrics split by item popularity (head / tail) and by user activity (cold / warm).

Rules (recorded in each result's protocol under ``slices``):

- **Head items** are the :math:`\lceil 0.2\,n \rceil` items with the most training users
  (ties broken by the lower item index, so the split is deterministic); every other item is
  a **tail** item. This is the "top 20 % of items by popularity" rule of the popularity-bias
  literature (e.g. Abdollahpouri et al. 2019 use a share of interactions instead; a share of
  items keeps both groups non-empty on any catalogue). With a candidate set (cold-start
  split) the candidates are the catalogue.
- **Cold users** are the evaluated users whose number of training interactions is at most
  the 20th percentile of that number over the evaluated users (``numpy.quantile``,
  ``method="lower"``, so the threshold is a count some user has); every other evaluated user
  is **warm**. Ties at the threshold all go to cold, so the cold group can hold more than
  20 % of users on data with many equal counts (e.g. k-core floors); the threshold and the
  group sizes are recorded.

Measures, for every K:

- ``cold:<metric>`` / ``warm:<metric>``: the mean of each per-user ranking metric over the
  user group (NaN for an empty group);
- ``head:recall@K`` / ``tail:recall@K``: recall of each user's head (tail) test items only,
  :math:`|\text{top-}K \cap R_u^{\text{tail}}| / |R_u^{\text{tail}}|`, averaged over the users
  with at least one such test item -- how well a model finds long-tail items it should;
- ``tail_share@K``: the fraction of all recommended slots that show tail items -- the
  exposure side of popularity bias (the share the tail would get from uniform exposure is
  :math:`1 - \lceil 0.2 n \rceil / n`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

HEAD_SHARE = 0.2
COLD_QUANTILE = 0.2


def head_items(item_popularity: np.ndarray, head_share: float = HEAD_SHARE) -> np.ndarray:
    """Bool mask ``[n_items]``: the ``ceil(head_share * n)`` most popular items."""
    popularity = np.asarray(item_popularity)
    n_head = math.ceil(head_share * len(popularity))
    order = np.argsort(-popularity, kind="stable")
    head = np.zeros(len(popularity), dtype=bool)
    head[order[:n_head]] = True
    return head


def cold_users(train_counts: np.ndarray, quantile: float = COLD_QUANTILE) -> tuple[np.ndarray, int]:
    """Bool mask over the given (evaluated) users' training counts, and the threshold."""
    counts = np.asarray(train_counts)
    if len(counts) == 0:
        return np.zeros(0, dtype=bool), 0
    threshold = int(np.quantile(counts, quantile, method="lower"))
    return counts <= threshold, threshold


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


def slice_metrics(
    per_user: Mapping[str, np.ndarray],
    top_items: np.ndarray,
    relevant: sp.csr_matrix,
    item_popularity: np.ndarray,
    user_train_counts: np.ndarray,
    ks: Sequence[int],
    hits: np.ndarray | None = None,
) -> tuple[dict[str, float], dict[str, object]]:
    """Slice measures of the module docstring, and the protocol of the slicing.

    Args:
        per_user: ``{metric: [n_users]}`` per-user values of the evaluated users.
        top_items: ``[n_users, max_k]`` ranked item indices of the same users (indices into
            ``item_popularity``, i.e. candidate-local with a candidate set).
        relevant: ``[n_users, n_items]`` CSR, the relevant items of the same users.
        item_popularity: ``[n_items]`` training users per item.
        user_train_counts: ``[n_users]`` training interactions of the same users.
        ks: cut-offs.
        hits: bool ``[n_users, max_k]``, whether ``top_items[u, r]`` is relevant to ``u``
            (evaluate has it already); computed from ``relevant`` when not given.
    """
    head = head_items(item_popularity)
    cold, threshold = cold_users(user_train_counts)
    out: dict[str, float] = {}
    for group, mask in (("cold", cold), ("warm", ~cold)):
        for name, values in per_user.items():
            out[f"{group}:{name}"] = _mean(np.asarray(values)[mask])
    n_users, n_items = top_items.shape[0], relevant.shape[1]
    relevant = sp.csr_matrix(relevant)
    rows = np.repeat(np.arange(n_users), np.diff(relevant.indptr))
    if hits is None:  # hit[u, r]: is the item at rank r relevant to u, via (row, item) keys
        relevant_keys = rows.astype(np.int64) * n_items + relevant.indices
        hit = np.isin(np.arange(n_users)[:, None] * n_items + top_items, relevant_keys)
    else:
        hit = np.asarray(hits, dtype=bool)
    shown_head = head[top_items] if top_items.size else np.zeros(top_items.shape, dtype=bool)
    relevant_head = np.bincount(rows, weights=head[relevant.indices], minlength=n_users)
    relevant_tail = np.diff(relevant.indptr) - relevant_head
    for k in ks:
        for group, shown, n_rel in (
            ("head", shown_head, relevant_head),
            ("tail", ~shown_head, relevant_tail),
        ):
            hits = (hit[:, :k] & shown[:, :k]).sum(axis=1)
            users = n_rel > 0
            out[f"{group}:recall@{k}"] = _mean(hits[users] / n_rel[users])
        out[f"tail_share@{k}"] = float((~shown_head[:, :k]).mean()) if n_users else math.nan
    protocol = {
        "head_items": f"top {HEAD_SHARE:.0%} of items by training users: {int(head.sum())}",
        "cold_users": f"training interactions <= {threshold} (20th percentile): "
        f"{int(cold.sum())} of {len(cold)} users",
    }
    return out, protocol
