"""Head/tail and cold/warm slices computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from semrec.evaluation.slices import cold_users, head_items, slice_metrics


def test_head_items_are_the_top_fifth_by_popularity_ties_by_index():
    popularity = np.array([5, 9, 9, 1, 0, 3, 2, 2, 7, 4])  # n = 10 -> 2 head items
    assert np.flatnonzero(head_items(popularity)).tolist() == [1, 2]
    # n = 6 -> ceil(1.2) = 2: items 1 (9) and then the first of the 5s (index 0)
    assert np.flatnonzero(head_items(np.array([5, 9, 5, 1, 0, 3]))).tolist() == [0, 1]


def test_cold_users_are_at_most_the_20th_percentile():
    counts = np.array([3, 10, 4, 3, 20, 8, 6, 5, 9, 7])
    cold, threshold = cold_users(counts)  # sorted 3 3 4 5 ... -> lower 20% quantile = 3
    assert threshold == 3
    assert np.flatnonzero(cold).tolist() == [0, 3]


def test_slice_metrics_by_hand():
    # 5 items, popularity -> head = {0} (ceil(0.2 * 5) = 1)
    popularity = np.array([10, 5, 4, 3, 1])
    # 3 users; lists of 2
    top_items = np.array([[0, 1], [2, 0], [3, 4]])
    relevant = sp.csr_matrix(
        np.array(
            [
                [1, 0, 1, 0, 0],  # head item 0 (hit at rank 1), tail item 2 (missed)
                [0, 0, 1, 1, 0],  # tail items 2 (hit) and 3 (missed)
                [0, 0, 0, 0, 1],  # tail item 4 (hit at rank 2)
            ]
        )
    )
    per_user = {"recall@2": np.array([0.5, 0.5, 1.0])}
    train_counts = np.array([2, 9, 7])  # 20th percentile (lower) = 2 -> user 0 cold
    got, protocol = slice_metrics(per_user, top_items, relevant, popularity, train_counts, [1, 2])
    assert got["cold:recall@2"] == 0.5
    assert got["warm:recall@2"] == pytest.approx(0.75)
    # head recall: only user 0 has a head test item; found at rank 1
    assert got["head:recall@1"] == 1.0 and got["head:recall@2"] == 1.0
    # tail recall@2: user 0 0/1, user 1 1/2, user 2 1/1 -> mean 0.5
    assert got["tail:recall@2"] == pytest.approx(0.5)
    # tail recall@1: user 0 0, user 1 1/2 (item 2 at rank 1), user 2 0 -> 1/6
    assert got["tail:recall@1"] == pytest.approx(1 / 6)
    # tail share of slots: top-1 items 0, 2, 3 -> 2/3; top-2: 0 shown twice of 6 -> 4/6
    assert got["tail_share@1"] == pytest.approx(2 / 3)
    assert got["tail_share@2"] == pytest.approx(4 / 6)
    assert "1" in protocol["head_items"] and "<= 2" in protocol["cold_users"]


def test_no_users():
    got, _ = slice_metrics(
        {"recall@1": np.zeros(0)},
        np.zeros((0, 1), dtype=np.int64),
        sp.csr_matrix((0, 3)),
        np.array([3, 2, 1]),
        np.zeros(0, dtype=np.int64),
        [1],
    )
    assert math.isnan(got["cold:recall@1"]) and math.isnan(got["tail:recall@1"])
