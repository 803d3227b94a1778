"""Dataset: interactions + item catalogue (+ the split a benchmark ships with)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

import numpy as np

from semrec.data.catalog import ItemCatalog
from semrec.data.interactions import Interactions
from semrec.errors import DataError


class Part(IntEnum):
    """Which part of a shipped ("given") split a row belongs to."""

    TRAIN = 0
    VALID = 1
    TEST = 2


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded data set. ``given_parts[row]`` is a :class:`Part` when the files are pre-split."""

    name: str
    interactions: Interactions
    catalog: ItemCatalog | None = None
    given_parts: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.catalog is not None and len(self.catalog) != self.interactions.n_items:
            raise DataError(
                f"{self.name}: catalog has {len(self.catalog)} items, "
                f"interactions have {self.interactions.n_items}"
            )
        if self.given_parts is not None and len(self.given_parts) != len(self.interactions):
            raise DataError(f"{self.name}: given_parts does not match the interactions")

    @classmethod
    def build(
        cls,
        name: str,
        interactions: Interactions,
        catalog: ItemCatalog | None = None,
        given_parts: np.ndarray | None = None,
    ) -> Dataset:
        """Align a catalogue (in any order, possibly with extra items) to the interactions."""
        if catalog is not None:
            catalog = catalog.aligned_to(interactions.item_ids)
        return cls(name, interactions, catalog, given_parts)

    def select(self, rows: np.ndarray) -> Dataset:
        """Keep the given rows and drop users/items left without any; the catalogue follows."""
        interactions = self.interactions.select(rows).compact()
        catalog = None if self.catalog is None else self.catalog.aligned_to(interactions.item_ids)
        parts = None if self.given_parts is None else self.given_parts[rows]
        return replace(self, interactions=interactions, catalog=catalog, given_parts=parts)

    def summary(self) -> dict[str, float | int | str]:
        """Statistics shown by ``semrec data info``."""
        x = self.interactions
        user_counts = x.user_counts()
        stats: dict[str, float | int | str] = {
            "name": self.name,
            "users": x.n_users,
            "items": x.n_items,
            "interactions": len(x),
            "distinct_pairs": int(x.user_items.nnz),
            "density": x.density,
            "interactions_per_user_median": float(np.median(user_counts)) if len(x) else 0.0,
            "has_rating": x.rating is not None,
            "has_timestamp": x.timestamp is not None,
            "text_coverage": 0.0 if self.catalog is None else self.catalog.text_coverage(),
        }
        if self.given_parts is not None:
            for part in Part:
                stats[f"given_{part.name.lower()}"] = int((self.given_parts == part).sum())
        return stats
