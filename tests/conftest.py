"""Shared fixtures: small slices of the bundled X-Wines data (real, CC0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semrec.data import Dataset
from semrec.data.registry import load_dataset
from semrec.data.splits import RandomSplit, Split, filter_min_rating, k_core, split
from semrec.encoders import load_embeddings

#: all-MiniLM-L6-v2 vectors of every X-Wines wine; tests/fixtures/make_xwines_embeddings.py
XWINES_EMBEDDINGS = Path(__file__).parent / "fixtures" / "embeddings" / "xwines-minilm.safetensors"


@pytest.fixture(scope="session")
def xwines() -> Dataset:
    return load_dataset("xwines")


@pytest.fixture(scope="session")
def small_dataset(xwines: Dataset) -> Dataset:
    """~300 real users of X-Wines, liked wines only, 3-core: small enough for every model."""
    liked = filter_min_rating(xwines, 4.0)
    first_users = liked.select(liked.interactions.user_index < 400)
    return k_core(first_users, 3)


@pytest.fixture(scope="session")
def small_split(small_dataset: Dataset) -> Split:
    return split(small_dataset, RandomSplit(test_ratio=0.2, seed=7))


@pytest.fixture(scope="session")
def small_item_embeddings(small_split: Split) -> np.ndarray:
    """Real text vectors (all-MiniLM-L6-v2, unit length) of ``small_split``'s items, row i =
    training item index i."""
    return load_embeddings(XWINES_EMBEDDINGS, small_split.train.item_ids, allow_extra=True)
