"""Item codes (semantic IDs): each item is a short tuple of discrete tokens, one per level.

Every tokenizer returns an :class:`ItemCodes`; generative models read it. Codes are unique
(a tokenizer appends a collision-breaking last level when its levels alone collide), so the
code <-> item map is a bijection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from semrec.errors import ModelError


@dataclass(frozen=True, eq=False)
class ItemCodes:
    """``codes[i]`` is item i's code: ``codes.shape == (n_items, n_levels)``, token
    ``codes[i, l]`` in ``0 .. level_sizes[l] - 1``; rows are unique."""

    codes: np.ndarray
    level_sizes: tuple[int, ...]
    #: how the codes were made, e.g. {"tokenizer": "rqvae", "input": "text", ...}
    source: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        codes = np.asarray(self.codes)
        if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
            raise ModelError(
                f"item codes must be an integer [n_items, n_levels] array, got {codes.shape}"
            )
        if codes.shape[1] != len(self.level_sizes):
            raise ModelError(
                f"item codes have {codes.shape[1]} levels but {len(self.level_sizes)} level sizes"
            )
        if len(codes) and ((codes < 0).any() or (codes >= np.asarray(self.level_sizes)).any()):
            raise ModelError("an item code token is outside its level's vocabulary")
        if len(np.unique(codes, axis=0)) != len(codes):
            raise ModelError("item codes are not unique: two items share a code")
        object.__setattr__(self, "codes", codes.astype(np.int64))

    @property
    def n_items(self) -> int:
        return len(self.codes)

    @property
    def n_levels(self) -> int:
        return self.codes.shape[1]

    def item_of(self, code: tuple[int, ...] | np.ndarray) -> int | None:
        """The item whose code this is, or None."""
        return self._lookup.get(tuple(int(t) for t in code))

    @property
    def _lookup(self) -> dict[tuple[int, ...], int]:
        lookup = self.__dict__.get("_lookup_cache")
        if lookup is None:
            lookup = {tuple(row): item for item, row in enumerate(self.codes.tolist())}
            object.__setattr__(self, "_lookup_cache", lookup)
        return lookup
