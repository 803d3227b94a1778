r"""Exposure-based individual item fairness of the top-K lists, original and corrected forms.

Every measure that Rampisela, Maistro, Ruotsalo and Lioma analyse in "Evaluation Measures of
Individual Item Fairness for Recommender Systems: A Critical Study" (ACM TORS 2024,
doi:10.1145/3631943, arXiv:2311.01013), in the form of the paper that introduced it
(``<name>@K``) and, where the study gives one, in its corrected form
(``<name>_corrected@K``). The formulas below follow the authors' released implementation
(github.com/theresiavr/individual-item-fairness-measures-recsys,
``RecBole/recbole/evaluator/metrics.py``: ``FairWORel`` for the original and corrected
forms, ``IID_AID`` for II-D / AI-D). The study's equations themselves were not available
to us when this was written (only its abstract and experimental setup), so measures are
cited by name rather than by equation number, and every formula is checked by hand-computed
tests on the study's edge cases. Where a definition can be read in more than one way, the
reading we implement is stated with the measure.

Notation (the study's): :math:`m` users each receive a list of exactly :math:`k` distinct
items from a catalogue of :math:`n` items, so there are :math:`km` recommendation slots.
:math:`c_i` is the exposure count of item :math:`i` (the number of lists that contain it),
:math:`\sum_i c_i = km`; :math:`p_i = c_i / km`; :math:`q = \lfloor km/n \rfloor` and
:math:`r = km \bmod n`, so the most uniform realisable exposure gives :math:`r` items
:math:`q + 1` slots and :math:`n - r` items :math:`q` slots. The study's central point: since
a list holds :math:`k` *distinct* items, the unfairest realisable recommendation is every
user receiving the same :math:`k` items (each exposed :math:`m` times), and the fairest is the
most uniform exposure above, which differs from "every item exposed equally" whenever
:math:`km < n` or :math:`n \nmid km`. The original forms are bounded by values that no
recommendation can reach; each corrected form is the min-max rescaling
:math:`(x - x_{\text{unfairest}}) / (x_{\text{fairest}} - x_{\text{unfairest}})` (or its
mirror for a lower-is-fairer measure) onto :math:`[0, 1]` with realisable end points. The
corrected forms are therefore comparable across data sets, :math:`k` and :math:`m`.

Measures (direction: which end is fairer; "range" is the attainable range for the corrected
forms and the theoretical one the original paper states for the original forms):

- ``jain`` -- Jain's index (Jain, Chiu, Hawe 1984),
  :math:`J = (\sum_i c_i)^2 / (n \sum_i c_i^2)`, range :math:`(0, 1]`, higher is fairer.
  Unfairest realisable value :math:`k/n`; fairest
  :math:`J_{\max} = (km)^2 / (n\,[n q^2 + r(2q + 1)])`.
  ``jain_corrected`` :math:`= (J - k/n) / (J_{\max} - k/n)`, in :math:`[0, 1]`, higher fairer.
- ``qf`` -- the fraction of the catalogue that is recommended at all (QF),
  :math:`QF = |\{i : c_i > 0\}| / n`, range :math:`(0, 1]`, higher fairer. At least :math:`k`
  and at most :math:`\min(n, km)` items can be exposed, so
  ``qf_corrected`` :math:`= (n\,QF - k) / (\min(n, km) - k)`, in :math:`[0, 1]`, higher fairer.
- ``ent`` -- Shannon entropy of the exposure distribution in base :math:`n`,
  :math:`Ent = -\sum_i p_i \log_n p_i`, range :math:`[0, 1]`, higher fairer. Reading: the
  original definition sums over all :math:`n` items; we use the usual convention
  :math:`0 \log 0 = 0` for unexposed items (the authors' code yields NaN there, which would
  make the original form undefined for almost every real run, where :math:`km < n` or some
  item is never recommended). Realisable minimum :math:`\log_n k`; realisable maximum
  :math:`Ent_{\max}` = the entropy of the most uniform exposure (:math:`\log_n(km)` when
  :math:`km \le n`). ``ent_corrected`` :math:`= (Ent - \log_n k) / (Ent_{\max} - \log_n k)`,
  in :math:`[0, 1]`, higher fairer.
- ``fsat`` -- the fraction of "satisfied" items (FairRec, Patro et al. 2020): an item is
  satisfied when its exposure reaches its maximin share :math:`q = \lfloor km/n \rfloor`;
  :math:`FSat = |\{i : c_i \ge q\}| / n`, range :math:`[0, 1]`, higher fairer. With
  :math:`km < n`, :math:`q = 0` and every item is satisfied: FSat is 1 for *any*
  recommendation, a limitation the study notes cannot be corrected. The unfairest realisable
  value is :math:`k/n`; ``fsat_corrected`` :math:`= (FSat - k/n) / (1 - k/n)`, in
  :math:`[0, 1]`, higher fairer.
- ``gini`` -- Gini index of exposure over all :math:`n` items (unexposed ones count 0),
  with :math:`c_{(1)} \le \dots \le c_{(n)}`:
  :math:`G = \sum_j (2j - n - 1) c_{(j)} / (n \sum_i c_i)`, range :math:`[0, 1)`, *lower*
  fairer (the same value as :func:`semrec.evaluation.beyond.gini`). Unfairest realisable
  value :math:`1 - k/n`; fairest :math:`G_{\min} = (n - r) r / (n\,km)`.
  ``gini_corrected`` :math:`= (G - G_{\min}) / (1 - k/n - G_{\min})`, in :math:`[0, 1]`,
  lower fairer.
- ``gini_w`` -- position-weighted Gini: the same index of the weights
  :math:`w_i = \sum_u \sum_{l} [\text{item at rank } l \text{ of } u = i] / \log_2(l + 1)`
  (rank :math:`l` 1-based), range :math:`[0, 1)`, lower fairer. Unfairest realisable value
  :math:`G^w_{\max}` = every user receives the same list in the same order; fairest
  :math:`G^w_{\min}` = when :math:`km \le n`, every slot a different item (the Gini of
  :math:`m` copies of each rank weight plus :math:`n - km` zeros). Reading: for
  :math:`km > n` we take :math:`G^w_{\min} = 0`, as the authors' code does; it is exact when
  every item can take every rank equally often and a lower bound otherwise, so the corrected
  value can then sit slightly above its true realisable minimum. ``gini_w_corrected``
  :math:`= (G^w - G^w_{\min}) / (G^w_{\max} - G^w_{\min})`, in :math:`[0, 1]`, lower fairer.
- ``vocd`` -- the mean pairwise relative exposure difference over the recommended items,
  :math:`\frac{1}{\binom{|E|}{2}} \sum_{\{i, j\} \subseteq E} |c_i - c_j| / \max(c_i, c_j)`
  with :math:`E = \{i : c_i > 0\}`, range :math:`[0, 1)`, lower fairer. Reading: only
  exposed items enter the pairs (a pair of two unexposed items would divide 0 by 0), as in
  the authors' code; with fewer than two exposed items it is 0 (no pair differs). The study
  gives no corrected form (its realisable extremes depend on the whole count vector).
- ``ii_d``, ``ai_d`` -- individual-user-to-individual-item and all-users-to-individual-item
  exposure disparity (the II-F and AI-F of Wu, Mitra et al., "Joint Multisided Exposure
  Fairness for Recommendation", SIGIR 2022, with relevance left out as in the study): a
  user browses with RBP patience :math:`\gamma = 0.8`, item exposure
  :math:`e_{ui} = \gamma^{l-1}` at rank :math:`l` (0 when not recommended), target
  :math:`\tilde e = (1 - \gamma^k) / ((1 - \gamma) n)` (the same total exposure spread
  evenly), :math:`II\text{-}D = \frac{1}{mn} \sum_{u, i} (e_{ui} - \tilde e)^2` and
  :math:`AI\text{-}D = \frac{1}{n} \sum_i (\frac{1}{m} \sum_u e_{ui} - \tilde e)^2`, range
  :math:`[0, \infty)` in principle (bounded above by a function of :math:`k, n, \gamma`),
  lower fairer; their realisable minimum is above 0 (a list cannot give every item the
  target), and the study gives no corrected form. Note that without relevance II-D is the
  *same* for every set of :math:`m` lists of :math:`k` distinct items (each user's exposure
  vector is a permutation of :math:`k` values :math:`\gamma^{l-1}` and :math:`n - k` zeros),
  so it cannot tell models apart; AI-D can.

Degenerate cases: a corrected form whose unfairest and fairest realisable values coincide
(e.g. :math:`k = n`, or one user for ``qf``/``ent``/``gini``: every recommendation is then
equally fair) is NaN, undefined, rather than an arbitrary 0 or 1; with no users every
measure is NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from semrec.evaluation.beyond import _as_index_array, gini
from semrec.evaluation.metrics import check_ks

#: RBP patience of the exposure model of II-D / AI-D (Wu et al. 2022; the study's value).
RBP_PATIENCE = 0.8

#: (name, fairer direction) of every measure, in output order; "_corrected" forms follow.
FAIRNESS_MEASURES: tuple[tuple[str, str], ...] = (
    ("jain", "higher"),
    ("jain_corrected", "higher"),
    ("qf", "higher"),
    ("qf_corrected", "higher"),
    ("ent", "higher"),
    ("ent_corrected", "higher"),
    ("fsat", "higher"),
    ("fsat_corrected", "higher"),
    ("gini", "lower"),
    ("gini_corrected", "lower"),
    ("gini_w", "lower"),
    ("gini_w_corrected", "lower"),
    ("vocd", "lower"),
    ("ii_d", "lower"),
    ("ai_d", "lower"),
)
FAIRER = dict(FAIRNESS_MEASURES)

_NAN = float("nan")


def _rescale(value: float, zero_at: float, one_at: float) -> float:
    """Min-max rescaling: ``zero_at`` -> 0, ``one_at`` -> 1 (callers pass the realisable
    extremes so the result is oriented like the original measure); NaN when the realisable
    range is a single point. Rounding noise at the end points is clipped."""
    span = one_at - zero_at
    if abs(span) <= 1e-12 * max(1.0, abs(one_at), abs(zero_at)):
        return _NAN
    scaled = (value - zero_at) / span
    return float(min(max(scaled, 0.0), 1.0)) if -1e-9 < scaled < 1 + 1e-9 else float(scaled)


def _entropy(counts: np.ndarray, base: int) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(base)) if base > 1 else 0.0


def _most_uniform_counts(slots: int, n_items: int) -> np.ndarray:
    q, r = divmod(slots, n_items)
    return np.concatenate([np.full(r, q + 1), np.full(n_items - r, q)]).astype(np.float64)


def fairness_at_k(items: np.ndarray, n_items: int, patience: float = RBP_PATIENCE) -> dict:
    """Every measure of the module docstring for lists ``items`` ``[m, k]`` (each row ``k``
    distinct item indices in ``[0, n_items)``, best first)."""
    n_users, k = items.shape
    if n_users == 0:
        return {name: _NAN for name, _ in FAIRNESS_MEASURES}
    n = n_items
    slots = n_users * k
    counts = np.bincount(items.ravel(), minlength=n).astype(np.float64)
    q, r = divmod(slots, n)
    exposed = int(np.count_nonzero(counts))
    out: dict[str, float] = {}

    # Jain's index
    jain = slots**2 / (n * float((counts**2).sum()))
    jain_max = slots**2 / (n * float(n * q**2 + r * (2 * q + 1)))
    out["jain"] = jain
    out["jain_corrected"] = _rescale(jain, k / n, jain_max)

    # QF: the fraction of the catalogue exposed
    out["qf"] = exposed / n
    out["qf_corrected"] = _rescale(exposed, k, min(n, slots))

    # Entropy in base n
    ent = _entropy(counts, n)
    out["ent"] = ent
    ent_min = _entropy(np.full(k, 1.0), n)  # log_n k
    ent_max = _entropy(_most_uniform_counts(slots, n), n)
    out["ent_corrected"] = _rescale(ent, ent_min, ent_max)

    # FSat: items whose exposure reaches the maximin share floor(km / n)
    fsat = float(np.count_nonzero(counts >= q)) / n
    out["fsat"] = fsat
    out["fsat_corrected"] = _rescale(fsat, k / n, 1.0)

    # Gini of exposure counts
    gini_value = gini(counts)
    gini_min = (n - r) * r / (n * slots)
    out["gini"] = gini_value
    out["gini_corrected"] = _rescale(gini_value, gini_min, 1 - k / n)

    # Position-weighted Gini: rank l (1-based) weighs 1 / log2(l + 1)
    rank_weight = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    weights = np.bincount(items.ravel(), weights=np.tile(rank_weight, n_users), minlength=n)
    gini_w = gini(weights)
    same_list = np.concatenate([n_users * rank_weight, np.zeros(n - k)])
    gini_w_max = gini(same_list)
    if slots <= n:
        all_distinct = np.concatenate([np.repeat(rank_weight, n_users), np.zeros(n - slots)])
        gini_w_min = gini(all_distinct)
    else:
        gini_w_min = 0.0
    out["gini_w"] = gini_w
    out["gini_w_corrected"] = _rescale(gini_w, gini_w_min, gini_w_max)

    # VoCD: mean pairwise relative difference over exposed items, via sorted counts:
    # for c_(a) <= c_(b), |c_a - c_b| / max = 1 - c_(a) / c_(b)
    out["vocd"] = _vocd(counts[counts > 0])

    # II-D and AI-D with RBP exposure
    exposure = patience ** np.arange(k, dtype=np.float64)  # gamma^(l - 1)
    target = (1 - patience**k) / ((1 - patience) * n)
    recommended = float(((exposure - target) ** 2).sum()) * n_users
    unrecommended = (n_users * n - slots) * target**2
    out["ii_d"] = (recommended + unrecommended) / (n_users * n)
    mean_exposure = (
        np.bincount(items.ravel(), weights=np.tile(exposure, n_users), minlength=n) / n_users
    )
    out["ai_d"] = float(((mean_exposure - target) ** 2).mean())
    return {name: float(out[name]) for name, _ in FAIRNESS_MEASURES}


def _vocd(exposed_counts: np.ndarray) -> float:
    """Mean over unordered pairs of ``|c_i - c_j| / max(c_i, c_j)`` (counts > 0).

    Pairs are grouped by distinct count value so the cost is quadratic in the number of
    *distinct* counts (small: counts are integers up to m), not in the number of items."""
    n_exposed = len(exposed_counts)
    if n_exposed < 2:
        return 0.0
    values, multiplicity = np.unique(exposed_counts, return_counts=True)
    multiplicity = multiplicity.astype(np.float64)
    # pairs between distinct values a < b: mult_a * mult_b * (1 - v_a / v_b); equal values: 0
    ratio = values[:, None] / values[None, :]
    pair_weight = np.triu(np.outer(multiplicity, multiplicity), k=1)
    total = float((pair_weight * (1.0 - ratio)).sum())
    return total / (n_exposed * (n_exposed - 1) / 2)


def item_fairness(
    top_items: torch.Tensor | np.ndarray,
    n_items: int,
    ks: Sequence[int],
    patience: float = RBP_PATIENCE,
) -> dict[str, float]:
    """All individual item fairness measures of the top-K lists, for every K in ``ks``.

    Args:
        top_items: int ``[n_users, max_k]``, item indices ranked best first, distinct within
            a row; ``max_k >= max(ks)``.
        n_items: the catalogue size :math:`n` (items that could have been recommended).
        ks: cut-offs, each >= 1 and <= ``n_items``.
        patience: RBP patience :math:`\\gamma` of II-D / AI-D, in (0, 1).

    Returns:
        ``{"jain@10": ..., "jain_corrected@10": ..., ...}``, measure-major in the order of
        ``FAIRNESS_MEASURES``. Definitions, ranges and fairer directions in the module
        docstring.

    Raises:
        ValueError: bad shapes or dtypes, item indices outside ``[0, n_items)``, a row with
            a repeated item, a bad K or patience.
    """
    items = _as_index_array(top_items)
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    if not 0 < patience < 1:
        raise ValueError(f"patience must lie in (0, 1), got {patience}")
    ks = check_ks(ks, items.shape[1], "top_items")
    if max(ks) > n_items:
        raise ValueError(f"K = {max(ks)} exceeds the catalogue size n_items = {n_items}")
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(
            f"top_items holds item indices from {items.min()} to {items.max()}, outside "
            f"the catalogue [0, {n_items})"
        )
    head = items[:, : max(ks)]
    if head.size:
        ordered = np.sort(head, axis=1)
        repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if repeated.any():
            row = int(np.flatnonzero(repeated)[0])
            raise ValueError(
                f"top_items row {row} repeats an item within its top-{max(ks)}: "
                "the measures assume k distinct items per list"
            )
    per_k = {k: fairness_at_k(items[:, :k], n_items, patience) for k in ks}
    return {f"{name}@{k}": per_k[k][name] for name, _ in FAIRNESS_MEASURES for k in ks}
