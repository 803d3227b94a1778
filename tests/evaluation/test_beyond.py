"""Beyond-accuracy measures on a 5-item catalogue, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semrec.evaluation.beyond import beyond_accuracy, gini

# 5 items; 8 training users. Item 4 has no training user.
POPULARITY = np.array([8, 4, 2, 1, 0])
N_TRAIN_USERS = 8
# p = pop / 8 = [1, 1/2, 1/4, 1/8, (0 -> 1)/8]
# self-information -log2 p = [0, 1, 2, 3, 3]
TOP_ITEMS = np.array(
    [
        [0, 1],
        [0, 2],
        [1, 4],
    ]
)


def test_hand_computed_k1():
    got = beyond_accuracy(TOP_ITEMS, POPULARITY, N_TRAIN_USERS, ks=(1,))
    # Top-1 lists: 0, 0, 1 -> exposure x = [2, 1, 0, 0, 0]
    # coverage = |{0, 1}| / 5 = 0.4
    # gini: sorted x = [0, 0, 0, 1, 2], n = 5, sum = 3, weights 2i - n - 1 = [-4, -2, 0, 2, 4]
    #   G = (2 * 1 + 4 * 2) / (5 * 3) = 10 / 15 = 2/3
    # novelty = mean(0, 0, 1) = 1/3
    # arp = mean(8, 8, 4) = 20/3
    assert got == pytest.approx(
        {"coverage@1": 0.4, "gini@1": 2 / 3, "novelty@1": 1 / 3, "arp@1": 20 / 3}
    )


def test_hand_computed_k2():
    got = beyond_accuracy(TOP_ITEMS, POPULARITY, N_TRAIN_USERS, ks=(2,))
    # Top-2 lists: {0, 1}, {0, 2}, {1, 4} -> exposure x = [2, 2, 1, 0, 1]
    # coverage = |{0, 1, 2, 4}| / 5 = 0.8
    # gini: sorted x = [0, 1, 1, 2, 2], sum = 6, weights [-4, -2, 0, 2, 4]
    #   G = (-4*0 - 2*1 + 0*1 + 2*2 + 4*2) / (5 * 6) = 10 / 30 = 1/3
    # novelty: per user (0 + 1)/2 = 0.5, (0 + 2)/2 = 1, (1 + 3)/2 = 2 -> mean 3.5 / 3 = 7/6
    #   (item 4, never seen in training, counts as p = 1/8 -> 3 bits)
    # arp: per user (8 + 4)/2 = 6, (8 + 2)/2 = 5, (4 + 0)/2 = 2 -> mean 13/3
    assert got == pytest.approx(
        {"coverage@2": 0.8, "gini@2": 1 / 3, "novelty@2": 7 / 6, "arp@2": 13 / 3}
    )


def test_keys_are_measure_major_and_tensor_input_agrees():
    from_numpy = beyond_accuracy(TOP_ITEMS, POPULARITY, N_TRAIN_USERS, ks=(1, 2))
    assert list(from_numpy) == [
        "coverage@1",
        "coverage@2",
        "gini@1",
        "gini@2",
        "novelty@1",
        "novelty@2",
        "arp@1",
        "arp@2",
    ]
    from_torch = beyond_accuracy(torch.from_numpy(TOP_ITEMS), POPULARITY, N_TRAIN_USERS, (1, 2))
    assert from_torch == pytest.approx(from_numpy)
    assert all(isinstance(value, float) for value in from_torch.values())


def test_equal_exposure_has_zero_gini_and_full_coverage():
    # Each item in exactly one list: x = [1, 1, 1, 1, 1]
    # G = (-4 - 2 + 0 + 2 + 4) * 1 / (5 * 5) = 0
    top = np.array([[0], [1], [2], [3], [4]])
    got = beyond_accuracy(top, POPULARITY, N_TRAIN_USERS, ks=(1,))
    assert got["gini@1"] == pytest.approx(0.0, abs=1e-12)
    assert got["coverage@1"] == 1.0
    # novelty = mean(0, 1, 2, 3, 3) = 9/5; arp = (8 + 4 + 2 + 1 + 0) / 5 = 3
    assert got["novelty@1"] == pytest.approx(9 / 5)
    assert got["arp@1"] == pytest.approx(3.0)


def test_fully_concentrated_exposure_has_maximal_gini():
    # Every user gets item 2: x = [0, 0, 3, 0, 0], sorted [0, 0, 0, 0, 3]
    # G = (2*5 - 5 - 1) * 3 / (5 * 3) = 4/5 = (n - 1) / n
    top = np.array([[2], [2], [2]])
    got = beyond_accuracy(top, POPULARITY, N_TRAIN_USERS, ks=(1,))
    assert got["gini@1"] == pytest.approx(0.8)
    assert got["coverage@1"] == pytest.approx(0.2)
    # novelty = -log2(2/8) = 2; arp = 2
    assert got["novelty@1"] == pytest.approx(2.0)
    assert got["arp@1"] == pytest.approx(2.0)


def test_gini_is_order_free_and_scale_free():
    assert gini(np.array([3, 0, 1, 0, 2])) == pytest.approx(gini(np.array([0, 2, 4, 0, 6])))
    assert gini(np.array([5, 5, 5])) == pytest.approx(0.0)
    assert math.isnan(gini(np.zeros(4)))


def test_no_users_gives_zero_coverage_and_nan():
    got = beyond_accuracy(np.empty((0, 2)), POPULARITY, N_TRAIN_USERS, ks=(2,))
    assert got["coverage@2"] == 0.0
    assert all(math.isnan(got[name]) for name in ("gini@2", "novelty@2", "arp@2"))


@pytest.mark.parametrize(
    ("top", "popularity", "n_train_users", "ks", "message"),
    [
        (np.array([[0, 5]]), POPULARITY, 8, (2,), "outside the catalogue"),
        (np.array([[-1, 0]]), POPULARITY, 8, (2,), "outside the catalogue"),
        (np.array([[0.0, 1.0]]), POPULARITY, 8, (2,), "integer"),
        (np.array([0, 1]), POPULARITY, 8, (1,), "2-D"),
        (TOP_ITEMS, POPULARITY, 8, (3,), "largest K"),
        (TOP_ITEMS, POPULARITY, 8, (), "empty"),
        (TOP_ITEMS, POPULARITY, 8, (0,), "positive"),
        (TOP_ITEMS, POPULARITY, 0, (1,), "n_train_users"),
        (TOP_ITEMS, POPULARITY, 4, (1,), r"\[0, n_train_users"),
        (TOP_ITEMS, np.array([1, -1, 0, 0, 0]), 8, (1,), r"\[0, n_train_users"),
        (TOP_ITEMS, np.zeros((5, 1)), 8, (1,), "1-D"),
    ],
)
def test_invalid_inputs_raise(top, popularity, n_train_users, ks, message):
    with pytest.raises(ValueError, match=message):
        beyond_accuracy(top, popularity, n_train_users, ks)
