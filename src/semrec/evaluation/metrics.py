r"""Ranking metrics with binary relevance, computed per user from a hit matrix.

The input is ``hits[u, r]``: True when the item ranked at position ``r`` (0-based) for user
``u`` is relevant (one of the user's test items), and ``n_relevant[u]`` = :math:`|R_u|`, the
number of relevant items of the user. Every metric is computed for each user and each cut-off
:math:`K`; ``mean_metrics`` averages over users. With :math:`h_r \in \{0, 1\}` the hit at
rank position :math:`r = 0, 1, \dots`:

- ``recall@K``    :math:`= \sum_{r<K} h_r / |R_u|`. The denominator is :math:`|R_u|`, not
  :math:`\min(|R_u|, K)`, as in LightGCN, NGCF and RecBole; a user with more relevant items
  than :math:`K` cannot reach 1.
- ``precision@K`` :math:`= \sum_{r<K} h_r / K`.
- ``hit_rate@K``  :math:`= 1` if :math:`\sum_{r<K} h_r > 0`, else 0.
- ``ndcg@K``      :math:`= \mathrm{DCG@K} / \mathrm{IDCG@K}` with
  :math:`\mathrm{DCG@K} = \sum_{r<K} h_r / \log_2(r + 2)` and
  :math:`\mathrm{IDCG@K} = \sum_{r < \min(|R_u|, K)} 1 / \log_2(r + 2)` (all relevant items
  ranked first, at most :math:`K` of them).
- ``mrr@K``       :math:`= 1 / (r^* + 1)` where :math:`r^*` is the 0-based position of the
  first hit, or 0 when there is no hit within the top :math:`K`.
- ``map@K``       :math:`= \sum_{r<K} \mathrm{precision@}(r+1) \cdot h_r / \min(|R_u|, K)`
  (average precision truncated at :math:`K`, normalized as in RecBole).

All computations are vectorized over users (torch, on the device of ``hits``) and return
float64.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import torch

METRICS = ("recall", "ndcg", "hit_rate", "precision", "mrr", "map")


def check_ks(ks: Sequence[int], max_k: int, what: str) -> list[int]:
    """Validate cut-offs against the ``max_k`` ranked positions of ``what``; plain ints back."""
    if len(ks) == 0:
        raise ValueError("ks is empty: give at least one cut-off K")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"every K must be a positive int, got {k!r}")
    if max(ks) > max_k:
        raise ValueError(
            f"{what} has {max_k} ranked positions per user, fewer than the largest K = {max(ks)}"
        )
    return [int(k) for k in ks]


def _check_inputs(hits: torch.Tensor, n_relevant: torch.Tensor, ks: Sequence[int]) -> list[int]:
    if hits.dtype != torch.bool:
        raise ValueError(f"hits must be a bool tensor, got dtype {hits.dtype}")
    if hits.dim() != 2:
        raise ValueError(f"hits must be 2-D [n_users, max_k], got shape {tuple(hits.shape)}")
    if n_relevant.shape != (hits.shape[0],):
        raise ValueError(
            f"n_relevant must have shape ({hits.shape[0]},) to match hits, "
            f"got {tuple(n_relevant.shape)}"
        )
    if (
        n_relevant.dtype.is_floating_point
        or n_relevant.dtype.is_complex
        or n_relevant.dtype == torch.bool
    ):
        raise ValueError(f"n_relevant must be an integer tensor, got dtype {n_relevant.dtype}")
    ks = check_ks(ks, hits.shape[1], "hits")
    if hits.shape[0] == 0:
        return ks
    if bool((n_relevant < 1).any()):
        user = int(torch.nonzero(n_relevant < 1)[0, 0])
        raise ValueError(
            f"user row {user} has n_relevant = {int(n_relevant[user])}; users without "
            "relevant items must not be evaluated"
        )
    too_many = hits.sum(dim=1) > n_relevant.to(hits.device)
    if bool(too_many.any()):
        user = int(torch.nonzero(too_many)[0, 0])
        raise ValueError(
            f"user row {user} has {int(hits[user].sum())} hits but only "
            f"n_relevant = {int(n_relevant[user])} relevant items"
        )
    return ks


def ranking_metrics(
    hits: torch.Tensor, n_relevant: torch.Tensor, ks: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Per-user ranking metrics for every metric in ``METRICS`` and every K in ``ks``.

    Args:
        hits: bool ``[n_users, max_k]``; ``hits[u, r]`` is True when the item at 0-based rank
            ``r`` for user ``u`` is relevant. ``max_k >= max(ks)``.
        n_relevant: integer ``[n_users]``, the number of relevant items of each user (>= 1).
        ks: cut-offs, each >= 1.

    Returns:
        ``{"recall@10": tensor[n_users], "ndcg@10": ..., ...}``: float64 tensors on the device
        of ``hits``, keys ordered metric-major (all K of ``recall`` first). Formulas in the
        module docstring.

    Raises:
        ValueError: wrong dtypes or shapes, an empty ``ks``, a K < 1 or larger than
            ``max_k``, a user with ``n_relevant < 1`` or with more hits than relevant items.
    """
    ks = _check_inputs(hits, n_relevant, ks)
    max_k = max(ks)
    device = hits.device
    hit = hits[:, :max_k].to(torch.float64)  # [n_users, max_k]
    n_rel = n_relevant.to(device=device, dtype=torch.float64)
    n_rel_index = n_relevant.to(device=device, dtype=torch.long)

    ranks = torch.arange(1, max_k + 1, device=device, dtype=torch.float64)  # 1-based
    discount = 1.0 / torch.log2(ranks + 1.0)  # 1 / log2(r + 2) for 0-based r
    ideal_dcg = discount.cumsum(0)  # ideal_dcg[n - 1] = IDCG with n ideal hits

    hits_within = hit.cumsum(1)  # [:, K-1] = hits in the top K
    dcg_within = (hit * discount).cumsum(1)  # [:, K-1] = DCG@K
    precision_at_rank = hits_within / ranks  # [:, r] = precision@(r+1)
    ap_within = (precision_at_rank * hit).cumsum(1)  # [:, K-1] = sum_{r<K} P@(r+1) h_r

    any_hit = hits_within[:, -1] > 0
    first_hit = hit.argmax(dim=1)  # first maximal index = first hit when any_hit
    reciprocal_rank = torch.where(any_hit, 1.0 / (first_hit + 1).to(torch.float64), 0.0)

    per_k: dict[int, dict[str, torch.Tensor]] = {}
    for k in ks:
        n_hits = hits_within[:, k - 1]
        ideal_hits = torch.clamp(n_rel_index, max=k)  # min(|R_u|, K)
        per_k[k] = {
            "recall": n_hits / n_rel,
            "ndcg": dcg_within[:, k - 1] / ideal_dcg[ideal_hits - 1],
            "hit_rate": (n_hits > 0).to(torch.float64),
            "precision": n_hits / k,
            "mrr": torch.where(first_hit < k, reciprocal_rank, 0.0),
            "map": ap_within[:, k - 1] / ideal_hits.to(torch.float64),
        }
    return {f"{metric}@{k}": per_k[k][metric] for metric in METRICS for k in ks}


def mean_metrics(per_user: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Average each per-user metric over users (NaN for a metric with no users)."""
    return {
        name: float(values.to(torch.float64).mean()) if values.numel() else float("nan")
        for name, values in per_user.items()
    }
