"""Individual item fairness measures against values computed by hand, on the study's edge
cases: all exposure on one item, perfectly uniform exposure, fewer slots than items."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semrec.evaluation.fairness import FAIRNESS_MEASURES, item_fairness

W2 = 1 / math.log2(3)  # rank-2 weight of the position-weighted Gini


def at_k(top, n_items, k):
    got = item_fairness(np.asarray(top), n_items, ks=(k,))
    return {name.split("@")[0]: value for name, value in got.items()}


def test_all_exposure_on_one_item():
    # n = 4 items, m = 3 users, k = 1: every list is [0] -> c = [3, 0, 0, 0], km = 3 < n
    got = at_k([[0], [0], [0]], n_items=4, k=1)
    assert got["jain"] == pytest.approx(9 / (4 * 9))  # = k/n, the unfairest realisable
    assert got["jain_corrected"] == 0.0  # J_max = 9 / (4 * 3) = 0.75
    assert got["qf"] == pytest.approx(0.25)
    assert got["qf_corrected"] == 0.0  # (1 - 1) / (min(4, 3) - 1)
    assert got["ent"] == pytest.approx(0.0)
    assert got["ent_corrected"] == 0.0  # (0 - log_4 1) / (log_4 3 - 0)
    # maximin share floor(3/4) = 0: every item is "satisfied" whatever is recommended
    assert got["fsat"] == 1.0
    assert got["fsat_corrected"] == 1.0
    # sorted c = [0, 0, 0, 3]: (2*4 - 5) * 3 / (4 * 3) = 0.75 = 1 - k/n
    assert got["gini"] == pytest.approx(0.75)
    assert got["gini_corrected"] == 1.0  # G_min = (4 - 3) * 3 / (4 * 3) = 0.25
    assert got["gini_w"] == pytest.approx(0.75)  # k = 1: weights = counts
    assert got["gini_w_corrected"] == 1.0
    # one exposed item, no pair differs: VoCD calls this perfectly fair (its blind spot)
    assert got["vocd"] == 0.0
    # e~ = (1 - 0.8) / (0.2 * 4) = 0.25; II-D = (3 * 0.75^2 + 9 * 0.25^2) / 12
    assert got["ii_d"] == pytest.approx((3 * 0.5625 + 9 * 0.0625) / 12)
    # mean exposure [1, 0, 0, 0]: AI-D = (0.75^2 + 3 * 0.25^2) / 4
    assert got["ai_d"] == pytest.approx((0.5625 + 3 * 0.0625) / 4)


def test_perfectly_uniform_exposure():
    # n = 4, m = 2, k = 2: lists [0, 1], [2, 3] -> c = [1, 1, 1, 1], km = n
    got = at_k([[0, 1], [2, 3]], n_items=4, k=2)
    assert got["jain"] == pytest.approx(1.0)
    assert got["jain_corrected"] == 1.0
    assert got["qf"] == 1.0 and got["qf_corrected"] == 1.0
    assert got["ent"] == pytest.approx(1.0) and got["ent_corrected"] == 1.0
    assert got["fsat"] == 1.0 and got["fsat_corrected"] == 1.0
    assert got["gini"] == pytest.approx(0.0) and got["gini_corrected"] == 0.0
    # rank weights [1, W2] twice: sorted [W2, W2, 1, 1] ->
    # (-3 W2 - W2 + 1 + 3) / (4 * (2 + 2 W2)) = (1 - W2) / (2 (1 + W2)) > 0 ...
    assert got["gini_w"] == pytest.approx((1 - W2) / (2 * (1 + W2)))
    # ... yet no recommendation can do better: the corrected form says fairest
    assert got["gini_w_corrected"] == 0.0
    assert got["vocd"] == 0.0
    # exposure [1, 0.8], e~ = (1 - 0.64) / (0.2 * 4) = 0.45
    assert got["ii_d"] == pytest.approx((2 * (0.55**2 + 0.35**2) + 4 * 0.45**2) / 8)
    # mean exposure per item [0.5, 0.4, 0.5, 0.4]
    assert got["ai_d"] == pytest.approx(0.05**2)


def test_fewer_slots_than_items_fairest_and_unfairest():
    # n = 10, m = 2, k = 2: km = 4 < n, so at most 4 items can be exposed
    fairest = at_k([[0, 1], [2, 3]], n_items=10, k=2)
    # the originals cannot reach their "fair" end ...
    assert fairest["jain"] == pytest.approx(16 / (10 * 4))  # 0.4, not 1
    assert fairest["qf"] == pytest.approx(0.4)
    assert fairest["ent"] == pytest.approx(math.log(4, 10))
    assert fairest["gini"] == pytest.approx((3 + 5 + 7 + 9) / 40)  # 0.6, not 0
    # ... the corrected forms do
    for name in ("jain", "qf", "ent", "fsat"):
        assert fairest[f"{name}_corrected"] == 1.0, name
    assert fairest["gini_corrected"] == 0.0
    assert fairest["gini_w_corrected"] == 0.0

    unfairest = at_k([[0, 1], [0, 1]], n_items=10, k=2)
    assert unfairest["jain"] == pytest.approx(16 / (10 * 8))  # k/n = 0.2, not 0
    assert unfairest["gini"] == pytest.approx((7 + 9) * 2 / 40)  # 1 - k/n = 0.8, not 1
    for name in ("jain", "qf", "ent"):
        assert unfairest[f"{name}_corrected"] == 0.0, name
    assert unfairest["fsat"] == 1.0  # floor(4/10) = 0: FSat cannot see the difference
    assert unfairest["gini_corrected"] == 1.0
    assert unfairest["gini_w_corrected"] == 1.0


def test_order_within_lists_only_matters_to_position_aware_measures():
    same_order = at_k([[0, 1], [0, 1], [2, 3]], n_items=6, k=2)
    swapped = at_k([[0, 1], [1, 0], [2, 3]], n_items=6, k=2)
    for name in ("jain", "qf", "ent", "fsat", "gini", "vocd", "ii_d"):
        assert same_order[name] == pytest.approx(swapped[name]), name
    # swapping spreads rank-1 exposure: both position-aware item measures get fairer
    assert swapped["gini_w"] < same_order["gini_w"]
    assert swapped["ai_d"] < same_order["ai_d"]


def test_vocd_by_hand():
    # n = 5, k = 1, counts [1, 2, 4, 0, 0]: pairs among exposed items
    # |1-2|/2 = 0.5, |1-4|/4 = 0.75, |2-4|/4 = 0.5 -> mean 1.75 / 3
    top = [[0]] + [[1]] * 2 + [[2]] * 4
    assert at_k(top, n_items=5, k=1)["vocd"] == pytest.approx(1.75 / 3)


def test_jain_and_gini_by_hand_between_the_extremes():
    # n = 4, m = 3, k = 2: lists [0,1], [0,2], [0,3] -> c = [3, 1, 1, 1], km = 6
    got = at_k([[0, 1], [0, 2], [0, 3]], n_items=4, k=2)
    assert got["jain"] == pytest.approx(36 / (4 * 12))  # 0.75
    # q = 1, r = 2: J_max = 36 / (4 * (4 + 2 * 3)) = 0.9; (0.75 - 0.5) / (0.9 - 0.5)
    assert got["jain_corrected"] == pytest.approx(0.25 / 0.4)
    # sorted [1, 1, 1, 3]: (-3 - 1 + 1 + 9) / (4 * 6) = 0.25; G_min = 2*2/24; G_max = 0.5
    assert got["gini"] == pytest.approx(0.25)
    assert got["gini_corrected"] == pytest.approx((0.25 - 4 / 24) / (0.5 - 4 / 24))
    # maximin share floor(6/4) = 1: all four items reach it
    assert got["fsat"] == 1.0
    assert got["qf_corrected"] == 1.0  # (4 - 2) / (min(4, 6) - 2)


def test_ii_d_and_ai_d_match_a_dense_reference():
    rng = np.random.default_rng(0)
    n_items, k, n_users = 12, 4, 9
    top = np.stack([rng.permutation(n_items)[:k] for _ in range(n_users)])
    got = at_k(top, n_items, k)
    exposure = np.zeros((n_users, n_items))
    for u, row in enumerate(top):
        exposure[u, row] = 0.8 ** np.arange(k)
    target = (1 - 0.8**k) / (0.2 * n_items)
    assert got["ii_d"] == pytest.approx(((exposure - target) ** 2).mean())
    assert got["ai_d"] == pytest.approx(((exposure.mean(0) - target) ** 2).mean())
    # VoCD against the plain pairwise definition
    counts = np.bincount(top.ravel(), minlength=n_items)
    exposed = counts[counts > 0]
    pairs = [abs(a - b) / max(a, b) for i, a in enumerate(exposed) for b in exposed[i + 1 :]]
    assert got["vocd"] == pytest.approx(np.mean(pairs))


def test_corrected_forms_stay_in_unit_interval_on_random_lists():
    rng = np.random.default_rng(1)
    for n_items, k, n_users in [(5, 2, 3), (30, 5, 4), (8, 3, 40), (50, 10, 7)]:
        skew = rng.dirichlet(np.full(n_items, 0.3))
        top = np.stack([rng.choice(n_items, size=k, replace=False, p=skew) for _ in range(n_users)])
        got = at_k(top, n_items, k)
        for name, value in got.items():
            if name.endswith("_corrected"):
                assert 0.0 <= value <= 1.0, (name, n_items, k, n_users, value)


def test_degenerate_ranges_are_nan():
    # k = n: every list holds the whole catalogue, every recommendation is equally fair
    got = at_k([[0, 1, 2], [2, 1, 0]], n_items=3, k=3)
    for name in ("jain", "qf", "ent", "fsat", "gini"):
        assert math.isnan(got[f"{name}_corrected"]), name
    assert got["jain"] == pytest.approx(1.0)
    # one user: QF can only be k/n
    assert math.isnan(at_k([[0, 1]], n_items=5, k=2)["qf_corrected"])


def test_keys_order_tensor_input_and_no_users():
    top = np.array([[0, 1, 2], [3, 1, 0]])
    got = item_fairness(top, 5, ks=(1, 3))
    expected = [f"{name}@{k}" for name, _ in FAIRNESS_MEASURES for k in (1, 3)]
    assert list(got) == expected
    assert item_fairness(torch.from_numpy(top), 5, ks=(1, 3)) == pytest.approx(got)
    empty = item_fairness(np.empty((0, 3), dtype=np.int64), 5, ks=(3,))
    assert all(math.isnan(value) for value in empty.values())


@pytest.mark.parametrize(
    ("top", "n_items", "ks", "message"),
    [
        ([[0, 0]], 3, (2,), "repeats an item"),
        ([[0, 5]], 3, (2,), "outside"),
        ([[0, 1]], 1, (2,), "exceeds the catalogue"),
        ([[0, 1]], 3, (3,), "fewer than the largest K"),
        ([[0.0, 1.0]], 3, (2,), "integer"),
    ],
)
def test_invalid_inputs_raise(top, n_items, ks, message):
    with pytest.raises(ValueError, match=message):
        item_fairness(np.asarray(top), n_items, ks)


def test_ii_d_cannot_tell_lists_apart_but_ai_d_can():
    # without relevance every user's exposure vector is a permutation of the same values
    concentrated = at_k([[0, 1], [0, 1], [0, 1]], n_items=6, k=2)
    spread = at_k([[0, 1], [2, 3], [4, 5]], n_items=6, k=2)
    assert concentrated["ii_d"] == pytest.approx(spread["ii_d"])
    assert spread["ai_d"] < concentrated["ai_d"]
