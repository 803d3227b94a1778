"""Filters and splits: hand-checked small cases plus invariants (a split never leaks)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from semrec.config import ExperimentConfig, build_config, dump_config
from semrec.data import Dataset, Interactions, Part
from semrec.data.splits import (
    ColdItemSplit,
    GivenSplit,
    LeaveOneOutSplit,
    RandomSplit,
    Split,
    TemporalSplit,
    filter_min_rating,
    k_core,
    split,
)
from semrec.errors import ConfigError, DataError


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


# --- cold-start items ---------------------------------------------------------------------
def items_with_rows(x: Interactions) -> np.ndarray:
    return np.flatnonzero(np.bincount(x.item_index, minlength=x.n_items))


def test_cold_items_never_leak_a_held_out_item_into_training(small_dataset):
    x = small_dataset.interactions
    s = split(small_dataset, ColdItemSplit(item_ratio=0.2, seed=11))
    held_out = s.candidate_items
    assert held_out is not None and np.all(np.diff(held_out) > 0)
    assert not np.isin(s.train.item_index, held_out).any()  # no training row of a held-out item
    assert np.isin(s.test.item_index, held_out).all()  # test holds only held-out items
    assert s.train.item_counts()[held_out].sum() == 0
    # every row of a held-out item is in test, unless its user has no training row at all
    train_users = np.flatnonzero(s.train.user_counts())
    kept = np.isin(x.item_index, held_out) & np.isin(x.user_index, train_users)
    assert len(s.test) == kept.sum()
    assert pairs(s.test) == pairs(x.select(kept))
    assert len(s.train) + len(s.test) + s.protocol["n_dropped_test_interactions"] == len(x)
    assert s.valid is None
    # one shared vocabulary: held-out items keep their index (and catalogue text)
    assert s.train.item_ids is x.item_ids and s.test.item_ids is x.item_ids


def test_cold_items_hold_out_the_rounded_fraction_of_items_with_interactions(small_dataset):
    n_items = len(items_with_rows(small_dataset.interactions))
    for ratio in (0.1, 0.2, 0.5):
        s = split(small_dataset, ColdItemSplit(item_ratio=ratio))
        assert len(s.candidate_items) == round(ratio * n_items)
        assert s.protocol["n_held_out_items"] == round(ratio * n_items)
        assert s.protocol["rank_among"] == "held_out"
        assert s.summary()["candidate_items"] == round(ratio * n_items)


def test_cold_items_count_is_at_least_one_and_never_all_items():
    # 3 items with rows (item 9 of the vocabulary has none and is never drawn)
    x = Interactions.from_ids(
        ["a", "a", "b", "b", "c"], ["1", "2", "2", "3", "1"], item_vocabulary=["1", "2", "3", "9"]
    )
    ds = Dataset("toy", x)
    assert len(split(ds, ColdItemSplit(item_ratio=0.01)).candidate_items) == 1
    assert len(split(ds, ColdItemSplit(item_ratio=0.99)).candidate_items) == 2
    for seed in range(10):
        assert 3 not in split(ds, ColdItemSplit(item_ratio=0.5, seed=seed)).candidate_items
    with pytest.raises(DataError, match="at least 2 items"):
        split(dataset_of(["a", "b"], ["1", "1"]), ColdItemSplit())


def test_cold_items_split_is_seeded(small_dataset):
    first = split(small_dataset, ColdItemSplit(seed=1))
    again = split(small_dataset, ColdItemSplit(seed=1))
    other = split(small_dataset, ColdItemSplit(seed=2))
    assert np.array_equal(first.candidate_items, again.candidate_items)
    assert pairs(first.test) == pairs(again.test) and pairs(first.train) == pairs(again.train)
    assert not np.array_equal(first.candidate_items, other.candidate_items)


def test_cold_items_drop_and_count_users_without_training_rows(small_dataset):
    # holding out 80 % of the wines leaves many real users with held-out wines only
    x = small_dataset.interactions
    s = split(small_dataset, ColdItemSplit(item_ratio=0.8, seed=5))
    held_out_row = np.isin(x.item_index, s.candidate_items)
    rows_per_user = np.bincount(x.user_index, minlength=x.n_users)
    held_out_rows_per_user = np.bincount(x.user_index[held_out_row], minlength=x.n_users)
    only_held_out = np.flatnonzero(held_out_rows_per_user == rows_per_user)
    assert len(only_held_out) > 0  # the case is exercised
    assert s.protocol["n_dropped_test_users"] == len(only_held_out)
    assert s.protocol["n_dropped_test_interactions"] == rows_per_user[only_held_out].sum()
    assert not np.isin(s.test.user_index, only_held_out).any()
    assert not np.isin(s.train.user_index, only_held_out).any()
    assert np.all(s.train.user_counts()[np.unique(s.test.user_index)] > 0)


def test_cold_items_ranked_among_all_items_has_no_candidates(small_dataset):
    held = split(small_dataset, ColdItemSplit(seed=3))
    every = split(small_dataset, ColdItemSplit(seed=3, rank_among="all"))
    assert every.candidate_items is None
    assert every.protocol["rank_among"] == "all"
    assert every.protocol["n_held_out_items"] == len(held.candidate_items)
    assert pairs(every.test) == pairs(held.test)


def test_cold_items_config_round_trip():
    raw = {
        "name": "cold",
        "dataset": {"name": "xwines"},
        "split": {"protocol": "cold_items"},
        "model": {"name": "most_pop"},
    }
    config = build_config(raw)
    assert config.split == ColdItemSplit()
    assert (config.split.item_ratio, config.split.seed, config.split.rank_among) == (
        0.2,
        2024,
        "held_out",
    )
    again = build_config(yaml.safe_load(dump_config(config)))
    assert isinstance(again, ExperimentConfig) and again.split == config.split
    tuned = build_config(raw, ["split.item_ratio=0.3", "split.rank_among=all"])
    assert tuned.split == ColdItemSplit(item_ratio=0.3, rank_among="all")
    for bad in ("split.item_ratio=1.0", "split.rank_among=warm", "split.valid=true"):
        with pytest.raises(ConfigError, match="split"):
            build_config(raw, [bad])


def test_split_checks_candidate_items():
    x = Interactions.from_ids(["a", "b"], ["1", "2"])
    with pytest.raises(DataError, match="sorted"):
        Split(x, x, None, {}, candidate_items=np.array([1, 0]))
    with pytest.raises(DataError, match="outside"):
        Split(x, x, None, {}, candidate_items=np.array([0, 2]))
    s = Split(x, x, None, {}, candidate_items=[0, 1])
    assert s.candidate_items.dtype == np.int64 and not s.candidate_items.flags.writeable


@settings(max_examples=40, deadline=None)
@given(
    events=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 15)), min_size=2, max_size=80),
    ratio=st.sampled_from([0.1, 0.3, 0.6]),
    seed=st.integers(0, 5),
)
def test_a_cold_item_split_never_leaks(events, ratio, seed):
    users, items = zip(*events, strict=True)
    assume(len(set(items)) >= 2)
    ds = dataset_of(list(users), list(items))
    s = split(ds, ColdItemSplit(item_ratio=ratio, seed=seed))
    held_out = set(s.candidate_items.tolist())
    assert not held_out & set(s.train.item_index.tolist())
    assert set(s.test.item_index.tolist()) <= held_out
    assert set(s.test.user_index.tolist()) <= set(s.train.user_index.tolist())
    dropped = s.protocol["n_dropped_test_interactions"]
    assert len(s.train) + len(s.test) + dropped == len(ds.interactions)
