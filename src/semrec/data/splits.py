"""Filters (rating threshold, k-core) and train/valid/test splits.

Splits: the shipped one (given), random per user, leave-one-out, global temporal, and
cold-start items (held-out items with all their interactions -> test). Every split records
its protocol, which is written next to every result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from semrec.data.dataset import Dataset, Part
from semrec.data.interactions import Interactions
from semrec.errors import DataError


@dataclass(frozen=True, eq=False)
class Split:
    """Train / (valid) / test interactions over one shared user and item vocabulary.

    ``candidate_items`` (sorted item indices), when set, are the only items evaluation ranks,
    e.g. the held-out items of a cold-start split; ``None`` ranks the whole catalogue.
    """

    train: Interactions
    test: Interactions
    valid: Interactions | None
    protocol: dict[str, Any]
    candidate_items: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.candidate_items is None:
            return
        candidates = np.asarray(self.candidate_items)
        if candidates.ndim != 1 or not np.issubdtype(candidates.dtype, np.integer):
            raise DataError(
                f"candidate_items must be a 1-D array of item indices, got dtype "
                f"{candidates.dtype} and shape {candidates.shape}"
            )
        if len(candidates) == 0:
            raise DataError("candidate_items is empty: there is nothing to rank")
        if (np.diff(candidates) <= 0).any():
            raise DataError("candidate_items must be sorted and without repeats")
        if candidates[0] < 0 or candidates[-1] >= self.train.n_items:
            raise DataError(
                f"candidate_items holds item indices outside 0..{self.train.n_items - 1}"
            )
        candidates = candidates.astype(np.int64)  # a private copy, read-only: Split is immutable
        candidates.flags.writeable = False
        object.__setattr__(self, "candidate_items", candidates)

    def summary(self) -> dict[str, int]:
        stats = {
            "train": len(self.train),
            "valid": 0 if self.valid is None else len(self.valid),
            "test": len(self.test),
            "test_users": int(np.count_nonzero(self.test.user_counts())),
        }
        if self.candidate_items is not None:
            stats["candidate_items"] = len(self.candidate_items)
        return stats


# --- filters ------------------------------------------------------------------------------
def filter_min_rating(dataset: Dataset, min_rating: float) -> Dataset:
    """Keep events rated at least ``min_rating`` (explicit ratings -> implicit positives)."""
    rating = dataset.interactions.rating
    if rating is None:
        raise DataError(f"{dataset.name}: has no ratings, so min_rating cannot be applied")
    return dataset.select(rating >= min_rating)


def k_core(dataset: Dataset, k: int) -> Dataset:
    """Drop users and items with fewer than ``k`` distinct partners, to a fixed point."""
    x = dataset.interactions
    keep = np.ones(len(x), dtype=bool)
    while True:
        user_items = x.select(keep).user_items
        user_ok = np.diff(user_items.indptr) >= k
        item_ok = np.bincount(user_items.indices, minlength=x.n_items) >= k
        new_keep = keep & user_ok[x.user_index] & item_ok[x.item_index]
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    if not keep.any():
        raise DataError(f"{dataset.name}: nothing is left after {k}-core filtering")
    return dataset.select(keep)


# --- split specifications -----------------------------------------------------------------
class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GivenSplit(_Spec):
    """The split the data set's files ship with (e.g. LightGCN train.txt / test.txt)."""

    protocol: Literal["given"] = "given"


class RandomSplit(_Spec):
    """Per user, a random ``test_ratio`` (and ``valid_ratio``) of their interactions."""

    protocol: Literal["random"] = "random"
    test_ratio: float = Field(0.2, gt=0, lt=1)
    valid_ratio: float = Field(0.0, ge=0, lt=1)
    seed: int = 2024


class LeaveOneOutSplit(_Spec):
    """Per user in time order: last item -> test, second-last -> valid (as SASRec/P5/TIGER)."""

    protocol: Literal["leave_one_out"] = "leave_one_out"
    valid: bool = True


class TemporalSplit(_Spec):
    """One global time cut: the latest ``test_ratio`` of all events -> test."""

    protocol: Literal["temporal"] = "temporal"
    test_ratio: float = Field(0.2, gt=0, lt=1)
    valid_ratio: float = Field(0.0, ge=0, lt=1)


class ColdItemSplit(_Spec):
    """Cold-start items: a random ``item_ratio`` of the items is held out with *all* their
    interactions -> test; every other interaction -> train. No validation part.

    Held-out items stay in the (shared) item vocabulary with zero training interactions, so a
    model that reads item text can still score them. The number held out is
    ``round(item_ratio * n)`` (half to even) over the ``n`` items that have interactions,
    kept within ``1..n-1``. Test rows of users left with no training interaction are dropped
    (no model can represent such a user); the protocol counts them. ``rank_among="held_out"``
    makes evaluation rank only the held-out items; ``"all"`` ranks the whole catalogue.
    """

    protocol: Literal["cold_items"] = "cold_items"
    item_ratio: float = Field(0.2, gt=0, lt=1)
    seed: int = 2024
    rank_among: Literal["held_out", "all"] = "held_out"


AnySplitSpec = GivenSplit | RandomSplit | LeaveOneOutSplit | TemporalSplit | ColdItemSplit
SplitSpec = Annotated[AnySplitSpec, Field(discriminator="protocol")]

# a row's part when it is in no part (cold_items: test rows of users without training rows)
_DROPPED = -1


def split(dataset: Dataset, spec: AnySplitSpec) -> Split:
    """Split a data set; the returned Split records ``spec`` and the data fingerprint."""
    x = dataset.interactions
    extra_protocol: dict[str, Any] = {}
    candidate_items = None
    if isinstance(spec, GivenSplit):
        if dataset.given_parts is None:
            raise DataError(
                f"{dataset.name}: the files ship no split; choose random, leave_one_out, "
                "temporal or cold_items"
            )
        parts = dataset.given_parts
    elif isinstance(spec, RandomSplit):
        parts = _random_parts(x, spec.test_ratio, spec.valid_ratio, spec.seed)
    elif isinstance(spec, LeaveOneOutSplit):
        parts = _leave_one_out_parts(x, spec.valid)
    elif isinstance(spec, ColdItemSplit):
        held_out, parts = _cold_item_parts(x, spec.item_ratio, spec.seed, dataset.name)
        dropped = parts == _DROPPED
        extra_protocol = {
            "n_held_out_items": len(held_out),
            "n_dropped_test_users": len(np.unique(x.user_index[dropped])),
            "n_dropped_test_interactions": int(dropped.sum()),
        }
        candidate_items = held_out if spec.rank_among == "held_out" else None
    else:
        parts = _temporal_parts(x, spec.test_ratio, spec.valid_ratio, dataset.name)
    has_valid = bool((parts == Part.VALID).any())
    protocol = {
        **spec.model_dump(),
        **extra_protocol,
        "dataset": dataset.name,
        "data_fingerprint": x.fingerprint(),
    }
    return Split(
        train=x.select(parts == Part.TRAIN),
        test=x.select(parts == Part.TEST),
        valid=x.select(parts == Part.VALID) if has_valid else None,
        protocol=protocol,
        candidate_items=candidate_items,
    )


def _position_within_user(
    user_index: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by ``order`` (grouped by user): each row's 0-based position among its
    user's rows and that user's row count, both in original row positions."""
    sorted_users = user_index[order]
    counts = np.bincount(sorted_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position_sorted = np.arange(len(order)) - starts[sorted_users]
    position = np.empty_like(position_sorted)
    position[order] = position_sorted
    return position, counts[user_index]


def _held_out_count(n: np.ndarray, ratio: float) -> np.ndarray:
    """round(n * ratio), at least 1 for users with two or more events, never all of them."""
    count = np.rint(n * ratio).astype(np.int64)
    count = np.where((n >= 2) & (ratio > 0), np.maximum(count, 1), count)
    return np.minimum(count, np.maximum(n - 1, 0))


def _random_parts(x: Interactions, test_ratio: float, valid_ratio: float, seed: int) -> np.ndarray:
    # Unique (user, item) pairs are split, so a repeated event never lands on both sides.
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(x)), x.user_index))
    position, n = _position_within_user(x.user_index, order)
    n_test = _held_out_count(n, test_ratio)
    n_valid = np.minimum(_held_out_count(n, valid_ratio), np.maximum(n - n_test - 1, 0))
    parts = np.full(len(x), Part.TRAIN, dtype=np.int8)
    parts[position < n_test] = Part.TEST
    parts[(position >= n_test) & (position < n_test + n_valid)] = Part.VALID
    return _no_repeats_across_parts(x, parts)


def _no_repeats_across_parts(x: Interactions, parts: np.ndarray) -> np.ndarray:
    """A (user, item) pair that occurs several times goes wholly to its first row's part."""
    pair = x.user_index * x.n_items + x.item_index
    _, first_row, inverse = np.unique(pair, return_index=True, return_inverse=True)
    return parts[first_row][inverse]


def _leave_one_out_parts(x: Interactions, with_valid: bool) -> np.ndarray:
    position, n = _position_within_user(x.user_index, x.time_order)
    from_end = n - 1 - position
    parts = np.full(len(x), Part.TRAIN, dtype=np.int8)
    parts[(from_end == 0) & (n >= 2)] = Part.TEST
    if with_valid:
        parts[(from_end == 1) & (n >= 3)] = Part.VALID
    return parts


def _temporal_parts(
    x: Interactions, test_ratio: float, valid_ratio: float, name: str
) -> np.ndarray:
    if x.timestamp is None:
        raise DataError(f"{name}: has no timestamps; a temporal split needs them")
    order = np.argsort(x.timestamp, kind="stable")
    rank = np.empty(len(x), dtype=np.int64)
    rank[order] = np.arange(len(x))
    n_test = round(len(x) * test_ratio)
    n_valid = round(len(x) * valid_ratio)
    parts = np.full(len(x), Part.TRAIN, dtype=np.int8)
    parts[rank >= len(x) - n_test] = Part.TEST
    parts[(rank >= len(x) - n_test - n_valid) & (rank < len(x) - n_test)] = Part.VALID
    return parts


def _cold_item_parts(
    x: Interactions, item_ratio: float, seed: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted held-out item indices, and each row's part: TEST for a held-out item's rows,
    TRAIN for the rest, ``_DROPPED`` for test rows of users with no TRAIN row."""
    items_with_rows = np.flatnonzero(np.bincount(x.item_index, minlength=x.n_items))
    n = len(items_with_rows)
    if n < 2:
        raise DataError(
            f"{name}: a cold-item split needs at least 2 items with interactions, got {n}"
        )
    n_held_out = min(max(round(item_ratio * n), 1), n - 1)
    rng = np.random.default_rng(seed)
    held_out = np.sort(rng.choice(items_with_rows, size=n_held_out, replace=False))
    is_held_out = np.zeros(x.n_items, dtype=bool)
    is_held_out[held_out] = True
    in_test = is_held_out[x.item_index]
    has_train_row = np.bincount(x.user_index[~in_test], minlength=x.n_users) > 0
    parts = np.full(len(x), Part.TRAIN, dtype=np.int8)
    parts[in_test] = np.where(has_train_row[x.user_index[in_test]], Part.TEST, _DROPPED)
    return held_out, parts
