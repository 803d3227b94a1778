"""Filters and splits: hand-checked small cases plus invariants (a split never leaks)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semrec.data import Dataset, Interactions, Part
from semrec.data.splits import (
    GivenSplit,
    LeaveOneOutSplit,
    RandomSplit,
    TemporalSplit,
    filter_min_rating,
    k_core,
    split,
)
from semrec.errors import DataError


def dataset_of(users, items, rating=None, timestamp=None, parts=None) -> Dataset:
    x = Interactions.from_ids(np.array(users), np.array(items), rating, timestamp)
    return Dataset("toy", x, None, None if parts is None else np.array(parts, dtype=np.int8))


def pairs(x: Interactions) -> set[tuple[str, str]]:
    return set(zip(x.user_ids[x.user_index], x.item_ids[x.item_index], strict=True))


def test_leave_one_out_holds_out_the_last_two_events_in_time():
    # user 1: items 10, 11, 12, 13 at times 4, 1, 3, 2 -> time order 11, 13, 12, 10
    ds = dataset_of([1, 1, 1, 1, 2, 2], [10, 11, 12, 13, 10, 11], timestamp=[4, 1, 3, 2, 5, 6])
    s = split(ds, LeaveOneOutSplit())
    assert pairs(s.test) == {("1", "10"), ("2", "11")}
    assert pairs(s.valid) == {("1", "12")}  # user 2 has only 2 events: no valid item
    assert pairs(s.train) == {("1", "11"), ("1", "13"), ("2", "10")}
    assert s.protocol["protocol"] == "leave_one_out"


def test_leave_one_out_without_timestamps_uses_row_order():
    ds = dataset_of([5, 5, 5], [3, 1, 2])
    s = split(ds, LeaveOneOutSplit(valid=False))
    assert pairs(s.test) == {("5", "2")}
    assert s.valid is None


def test_random_split_sizes_per_user():
    # user a: 10 events -> 2 test; user b: 2 events -> 1 test; user c: 1 event -> 0 test
    users = ["a"] * 10 + ["b"] * 2 + ["c"]
    items = [*list(range(10)), 0, 1, 5]
    s = split(dataset_of(users, items), RandomSplit(test_ratio=0.2, seed=3))
    test_counts = dict(
        zip(*np.unique(s.test.user_ids[s.test.user_index], return_counts=True), strict=True)
    )
    assert test_counts == {"a": 2, "b": 1}
    assert len(s.train) == 10


def test_random_split_is_seeded():
    ds = dataset_of(np.repeat(np.arange(20), 10), np.tile(np.arange(10), 20))
    first = split(ds, RandomSplit(seed=1))
    again = split(ds, RandomSplit(seed=1))
    other = split(ds, RandomSplit(seed=2))
    assert pairs(first.test) == pairs(again.test)
    assert pairs(first.test) != pairs(other.test)


def test_temporal_split_cuts_at_a_global_time():
    ds = dataset_of([1, 2, 1, 2, 3], [1, 1, 2, 2, 3], timestamp=[10, 20, 30, 40, 50])
    s = split(ds, TemporalSplit(test_ratio=0.4))
    assert pairs(s.test) == {("2", "2"), ("3", "3")}
    assert s.train.timestamp.max() < s.test.timestamp.min()


def test_temporal_split_needs_timestamps():
    with pytest.raises(DataError, match="timestamps"):
        split(dataset_of([1, 2], [1, 2]), TemporalSplit())


def test_given_split_uses_the_shipped_parts():
    ds = dataset_of([0, 0, 1], [0, 1, 1], parts=[Part.TRAIN, Part.TEST, Part.TRAIN])
    s = split(ds, GivenSplit())
    assert pairs(s.test) == {("0", "1")}
    with pytest.raises(DataError, match="ship no split"):
        split(dataset_of([0], [0]), GivenSplit())


def test_k_core_reaches_a_fixed_point():
    # item z has 1 user; removing it leaves user c with 1 item, which must go too
    ds = dataset_of(["a", "a", "b", "b", "c", "c"], ["x", "y", "x", "y", "x", "z"])
    core = k_core(ds, 2)
    assert pairs(core.interactions) == {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}
    assert core.interactions.n_users == 2 and core.interactions.n_items == 2


def test_min_rating_keeps_liked_events_and_needs_ratings():
    ds = dataset_of([1, 1, 2], [1, 2, 1], rating=[4.0, 3.5, 5.0])
    assert pairs(filter_min_rating(ds, 4.0).interactions) == {("1", "1"), ("2", "1")}
    with pytest.raises(DataError, match="no ratings"):
        filter_min_rating(dataset_of([1], [1]), 4.0)


@settings(max_examples=40, deadline=None)
@given(
    events=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 15)), min_size=1, max_size=80),
    protocol=st.sampled_from(["random", "leave_one_out"]),
    seed=st.integers(0, 5),
)
def test_a_split_never_leaks_and_loses_nothing(events, protocol, seed):
    users, items = zip(*events, strict=True)
    ds = dataset_of(list(users), list(items), timestamp=list(range(len(users))))
    spec = RandomSplit(seed=seed, valid_ratio=0.1) if protocol == "random" else LeaveOneOutSplit()
    s = split(ds, spec)
    parts = [s.train, s.test] + ([s.valid] if s.valid is not None else [])
    assert sum(len(p) for p in parts) == len(ds.interactions)
    if protocol == "random":  # each (user, item) pair lives in exactly one part
        seen = [pairs(p) for p in parts]
        assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])
    for part in parts:  # one vocabulary for all parts
        assert part.user_ids is ds.interactions.user_ids
