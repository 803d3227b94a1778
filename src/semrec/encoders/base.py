"""What every item encoder offers, and the normalisation shared by computed and given vectors."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class TextEncoder(Protocol):
    """Turns texts into vectors. ``identity`` names the exact model: the cache trusts that the
    same identity gives the same vector for the same text, so it must change with the weights.
    """

    identity: str

    def encode(self, texts: list[str]) -> np.ndarray:
        """One batch of texts -> a [len(texts), dim] float array."""
        ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)
