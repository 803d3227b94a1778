"""Interactions: who did what, indexed once and never mutated.

Data ids (``user_id``, ``item_id``) are the data set's own strings; indices (``user_index``,
``item_index``) are contiguous integers. ``user_ids[u]`` is the id of user index ``u``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec.errors import DataError, UnknownUserError


def _vocabulary(values: np.ndarray | Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Codes and sorted vocabulary of ``values``; integer ids sort numerically."""
    codes, uniques = pd.factorize(np.asarray(values), sort=True)
    return codes.astype(np.int64), np.asarray(uniques).astype(str).astype(object)


def _codes_in(values: np.ndarray | Sequence, vocabulary: np.ndarray, what: str) -> np.ndarray:
    lookup = pd.Index(vocabulary)
    codes = lookup.get_indexer(np.asarray(values).astype(str))
    if (codes < 0).any():
        unknown = np.asarray(values)[codes < 0][:5].tolist()
        raise DataError(f"{what} not in the given vocabulary: {unknown}")
    return codes.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Interactions:
    """User x item events with optional rating and timestamp, one row per event.

    Rows keep the order they were read in; where there is no timestamp that order is the
    time order (sequence formats list each user's items chronologically).
    """

    user_index: np.ndarray
    item_index: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    rating: np.ndarray | None = None
    timestamp: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.user_index)
        if len(self.item_index) != n:
            raise DataError(f"user_index has {n} rows but item_index has {len(self.item_index)}")
        for name in ("rating", "timestamp"):
            column = getattr(self, name)
            if column is not None and len(column) != n:
                raise DataError(f"{name} has {len(column)} rows, expected {n}")
        if n and (self.user_index.min() < 0 or self.user_index.max() >= len(self.user_ids)):
            raise DataError("user_index out of range of user_ids")
        if n and (self.item_index.min() < 0 or self.item_index.max() >= len(self.item_ids)):
            raise DataError("item_index out of range of item_ids")
        for array in (self.user_index, self.item_index, self.rating, self.timestamp):
            if array is not None:
                array.setflags(write=False)

    @classmethod
    def from_ids(
        cls,
        user_ids: np.ndarray | Sequence,
        item_ids: np.ndarray | Sequence,
        rating: np.ndarray | Sequence | None = None,
        timestamp: np.ndarray | Sequence | None = None,
        *,
        user_vocabulary: np.ndarray | Sequence | None = None,
        item_vocabulary: np.ndarray | Sequence | None = None,
    ) -> Interactions:
        """Index raw ids. Without a vocabulary the ids are sorted (numerically when integer)."""
        if user_vocabulary is None:
            user_index, user_vocab = _vocabulary(user_ids)
        else:
            user_vocab = np.asarray(user_vocabulary).astype(str).astype(object)
            user_index = _codes_in(user_ids, user_vocab, "user ids")
        if item_vocabulary is None:
            item_index, item_vocab = _vocabulary(item_ids)
        else:
            item_vocab = np.asarray(item_vocabulary).astype(str).astype(object)
            item_index = _codes_in(item_ids, item_vocab, "item ids")
        return cls(
            user_index=user_index,
            item_index=item_index,
            user_ids=user_vocab,
            item_ids=item_vocab,
            rating=None if rating is None else np.asarray(rating, dtype=np.float32),
            timestamp=None if timestamp is None else np.asarray(timestamp, dtype=np.int64),
        )

    # --- sizes -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.user_index)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def density(self) -> float:
        cells = self.n_users * self.n_items
        return self.user_items.nnz / cells if cells else 0.0

    # --- views -------------------------------------------------------------------------
    @cached_property
    def user_items(self) -> sp.csr_matrix:
        """Binary user x item matrix (repeated events count once), float32, one row per user."""
        matrix = sp.csr_matrix(
            (np.ones(len(self), dtype=np.float32), (self.user_index, self.item_index)),
            shape=(self.n_users, self.n_items),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        matrix.sort_indices()
        return matrix

    @cached_property
    def time_order(self) -> np.ndarray:
        """Row positions sorted by user, then timestamp (stable: ties keep reading order)."""
        order_key = np.arange(len(self)) if self.timestamp is None else self.timestamp
        return np.lexsort((np.arange(len(self)), order_key, self.user_index))

    def sequences(self) -> list[np.ndarray]:
        """Each user's item indices in time order (repeats kept), one array per user index."""
        ordered_items = self.item_index[self.time_order]
        counts = np.bincount(self.user_index, minlength=self.n_users)
        return np.split(ordered_items, np.cumsum(counts)[:-1])

    def item_counts(self) -> np.ndarray:
        """Number of distinct users per item."""
        return np.asarray(self.user_items.sum(axis=0)).ravel().astype(np.int64)

    def user_counts(self) -> np.ndarray:
        """Number of distinct items per user."""
        return np.diff(self.user_items.indptr).astype(np.int64)

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "user_id": self.user_ids[self.user_index],
                "item_id": self.item_ids[self.item_index],
            }
        )
        if self.rating is not None:
            frame["rating"] = self.rating
        if self.timestamp is not None:
            frame["timestamp"] = self.timestamp
        return frame

    # --- derived interaction sets --------------------------------------------------------
    def select(self, rows: np.ndarray) -> Interactions:
        """The given rows (boolean mask or positions), same vocabularies."""
        return Interactions(
            user_index=self.user_index[rows],
            item_index=self.item_index[rows],
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            rating=None if self.rating is None else self.rating[rows],
            timestamp=None if self.timestamp is None else self.timestamp[rows],
        )

    def compact(self) -> Interactions:
        """Drop users and items that have no rows; indices are renumbered in the same order."""
        used_users = np.unique(self.user_index)
        used_items = np.unique(self.item_index)
        return Interactions(
            user_index=np.searchsorted(used_users, self.user_index),
            item_index=np.searchsorted(used_items, self.item_index),
            user_ids=self.user_ids[used_users],
            item_ids=self.item_ids[used_items],
            rating=self.rating,
            timestamp=self.timestamp,
        )

    # --- id <-> index ------------------------------------------------------------------
    @cached_property
    def _user_lookup(self) -> pd.Index:
        return pd.Index(self.user_ids)

    @cached_property
    def _item_lookup(self) -> pd.Index:
        return pd.Index(self.item_ids)

    def user_index_of(self, user_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        codes = self._user_lookup.get_indexer(np.asarray(user_ids).astype(str))
        if (codes < 0).any():
            unknown = np.asarray(user_ids)[codes < 0][:5].tolist()
            raise UnknownUserError(f"unknown user id(s): {unknown}")
        return codes.astype(np.int64)

    def item_index_of(self, item_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        codes = self._item_lookup.get_indexer(np.asarray(item_ids).astype(str))
        if (codes < 0).any():
            unknown = np.asarray(item_ids)[codes < 0][:5].tolist()
            raise DataError(f"unknown item id(s): {unknown}")
        return codes.astype(np.int64)

    def fingerprint(self) -> str:
        """Short content hash of the events and vocabularies (recorded with results)."""
        digest = hashlib.sha256()
        for array in (self.user_index, self.item_index):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        for vocabulary in (self.user_ids, self.item_ids):
            digest.update("\x1f".join(vocabulary.tolist()).encode())
        return digest.hexdigest()[:16]
