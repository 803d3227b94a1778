r"""Beyond-accuracy measures of the recommendation lists: coverage, concentration, popularity.

Given the ranked lists shown to the evaluated users, ``top_items[u, :K]``, and the training
popularity of each item, ``pop_i`` = number of training users who interacted with item
:math:`i` (out of :math:`N` training users, over a catalogue of :math:`n` items):

- ``coverage@K``: fraction of the catalogue that appears in at least one top-K list,
  :math:`|\bigcup_u L_u^K| / n`.
- ``gini@K``: Gini coefficient of the exposure counts :math:`x_i` (number of top-K lists
  containing item :math:`i`) over *all* :math:`n` items, never-recommended ones included
  (:math:`x_i = 0`). With :math:`x_{(1)} \le \dots \le x_{(n)}` sorted ascending,
  :math:`G = \sum_{i=1}^{n} (2i - n - 1)\, x_{(i)} / (n \sum_i x_i)`. 0 means every item is
  shown equally often; all exposure on a single item gives the maximum :math:`(n - 1) / n`.
- ``novelty@K``: mean over users of the mean self-information of their recommended items,
  :math:`-\log_2 p_i` with :math:`p_i = \max(\mathrm{pop}_i, 1) / N`. An item no training user
  has seen would have infinite self-information; we count it as seen by one user
  (:math:`p_i = 1/N`), the rarest observable popularity, so novelty stays finite.
- ``arp@K``: average recommendation popularity (Abdollahpouri et al., "Managing Popularity
  Bias in Recommender Systems with Personalized Re-ranking", FLAIRS 2019): mean over users
  of the mean :math:`\mathrm{pop}_i` of their recommended items (raw training-user counts).

Every list has exactly K items, so the mean over users of per-user means equals the mean over
all (user, position) pairs. With no evaluated users, coverage is 0 and the other measures are
NaN (undefined), like the per-user means of :mod:`semrec.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from semrec.evaluation.metrics import check_ks


def _as_index_array(top_items: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(top_items, torch.Tensor):
        top_items = top_items.detach().cpu().numpy()
    array = np.asarray(top_items)
    if array.ndim != 2:
        raise ValueError(f"top_items must be 2-D [n_users, max_k], got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)  # e.g. np.empty((0, k)) is float64
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"top_items must hold integer item indices, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def gini(exposure: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 = equal; NaN when all counts are 0)."""
    x = np.sort(np.asarray(exposure, dtype=np.float64))
    n = len(x)
    total = x.sum()
    if n == 0 or total == 0:
        return float("nan")
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(np.sum((2 * i - n - 1) * x) / (n * total))


def beyond_accuracy(
    top_items: torch.Tensor | np.ndarray,
    item_popularity: np.ndarray,
    n_train_users: int,
    ks: Sequence[int],
) -> dict[str, float]:
    """Coverage, Gini of exposure, novelty and ARP of the top-K lists, for every K in ``ks``.

    Args:
        top_items: int ``[n_users, max_k]``, item indices ranked best first for each
            evaluated user; ``max_k >= max(ks)``.
        item_popularity: ``[n_items]``, number of training users of each item; its length
            is the catalogue size.
        n_train_users: number of training users (the denominator of item probabilities).
        ks: cut-offs, each >= 1.

    Returns:
        ``{"coverage@10": ..., "gini@10": ..., "novelty@10": ..., "arp@10": ..., ...}``,
        measure-major (all K of ``coverage`` first). Definitions in the module docstring.

    Raises:
        ValueError: bad shapes or dtypes, item indices outside ``[0, n_items)``, negative
            popularity or popularity above ``n_train_users``, ``n_train_users < 1``, an
            empty ``ks``, a K < 1 or larger than ``max_k``.
    """
    items = _as_index_array(top_items)
    popularity = np.asarray(item_popularity)
    if popularity.ndim != 1 or len(popularity) == 0:
        raise ValueError(f"item_popularity must be 1-D and non-empty, got shape {popularity.shape}")
    n_items = len(popularity)
    if n_train_users < 1:
        raise ValueError(f"n_train_users must be >= 1, got {n_train_users}")
    if (popularity < 0).any() or (popularity > n_train_users).any():
        raise ValueError(
            f"item_popularity must lie in [0, n_train_users = {n_train_users}], got values "
            f"from {popularity.min()} to {popularity.max()}"
        )
    ks = check_ks(ks, items.shape[1], "top_items")
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(
            f"top_items holds item indices from {items.min()} to {items.max()}, outside "
            f"the catalogue [0, {n_items})"
        )

    popularity = popularity.astype(np.float64)
    self_information = -np.log2(np.maximum(popularity, 1.0) / n_train_users)
    n_users = items.shape[0]
    nan = float("nan")

    per_k: dict[int, dict[str, float]] = {}
    for k in ks:
        shown = items[:, :k].ravel()
        exposure = np.bincount(shown, minlength=n_items)
        per_k[k] = {
            "coverage": float(np.count_nonzero(exposure)) / n_items,
            "gini": gini(exposure),
            "novelty": float(self_information[shown].mean()) if n_users else nan,
            "arp": float(popularity[shown].mean()) if n_users else nan,
        }
    measures = ("coverage", "gini", "novelty", "arp")
    return {f"{measure}@{k}": per_k[k][measure] for measure in measures for k in ks}
