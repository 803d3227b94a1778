"""Classical baselines: most popular, item-based kNN and EASE.

All three score from a user's item set, so they also answer queries made of item histories
(users never seen in training).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from semrec.errors import ModelError
from semrec.models.base import (
    ModelConfig,
    Query,
    Recommender,
    TrainData,
    csr_from_tensors,
    csr_to_tensors,
    register,
)
from semrec.progress import progress


def _dense(matrix: sp.spmatrix, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.asarray(matrix.todense(), dtype=np.float32)).to(device)


@register
class MostPop(Recommender):
    """Recommends the items with the most distinct training users, to everyone."""

    name = "most_pop"
    accepts_history = True

    class Config(ModelConfig):
        pass

    def _fit(self, data: TrainData) -> None:
        self.popularity = torch.from_numpy(data.interactions.item_counts().astype(np.float32))

    def score(self, query: Query) -> torch.Tensor:
        self._require_fitted()
        if query.history is None:
            self.check_users(query)
        return self.popularity.to(self.device).expand(len(query), -1).clone()

    def _state(self) -> dict[str, torch.Tensor]:
        return {"popularity": self.popularity}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.popularity = tensors["popularity"]
        if self.popularity.shape != (self.n_items,):
            raise ValueError(f"popularity has shape {tuple(self.popularity.shape)}")


@register
class ItemKNN(Recommender):
    """Item-based k-nearest-neighbours (Sarwar et al., WWW 2001; Deshpande & Karypis, TOIS 2004)
    on binary feedback.

    sim(i, j) = |U_i ∩ U_j| / (sqrt|U_i| sqrt|U_j| + shrinkage)   (cosine with shrinkage)

    For every target item j only its ``n_neighbors`` most similar items i != j are kept; a
    user's score for j is the sum of sim(i, j) over the items i in their history. This is
    RecBole's ItemKNN, which we compare against.
    """

    name = "item_knn"
    accepts_history = True

    class Config(ModelConfig):
        n_neighbors: int = Field(100, ge=1)
        shrinkage: float = Field(0.0, ge=0)
        block_size: int = Field(1024, ge=1, description="target items per similarity block")

    def _fit(self, data: TrainData) -> None:
        x = data.interactions.user_items.astype(np.float32).tocsc()
        n_items = x.shape[1]
        norms = np.sqrt(np.asarray(x.power(2).sum(axis=0)).ravel())
        k = min(self.config.n_neighbors, n_items - 1)
        rows, cols, values = [], [], []
        blocks = range(0, n_items, self.config.block_size)
        with progress("ItemKNN similarities", total=len(blocks)) as advance:
            for start in blocks:
                stop = min(start + self.config.block_size, n_items)
                targets = np.arange(start, stop)
                overlap = torch.from_numpy((x.T @ x[:, targets]).toarray())
                denominator = torch.from_numpy(
                    np.outer(norms, norms[targets]) + self.config.shrinkage
                )
                similarity = torch.where(denominator > 0, overlap / denominator, 0.0)
                similarity[targets, np.arange(len(targets))] = 0.0  # no self-similarity
                top_values, top_rows = torch.topk(similarity, k, dim=0)
                keep = top_values > 0
                rows.append(top_rows[keep].numpy())
                cols.append(np.broadcast_to(targets, top_rows.shape)[keep.numpy()])
                values.append(top_values[keep].numpy())
                advance()
        self.similarity = sp.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_items, n_items),
            dtype=np.float32,
        )

    def score(self, query: Query) -> torch.Tensor:
        self._require_fitted()
        return _dense(self.history_matrix(query) @ self.similarity, self.device)

    def _state(self) -> dict[str, torch.Tensor]:
        return csr_to_tensors(self.similarity, "similarity")

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.similarity = csr_from_tensors(tensors, "similarity", (self.n_items, self.n_items))


def _invert_spd_in_place(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of a symmetric positive-definite contiguous matrix, computed in its own memory.

    Cholesky then the inverse from the factor, both written over the input, so the solve
    needs no second n x n buffer: what lets EASE fit Gowalla's 41k items (6.3 GiB in
    float32) on a 24 GiB machine. The transpose of a row-major symmetric matrix is the same
    matrix in column-major order, which LAPACK overwrites without a copy.
    (SciPy's bundled OpenBLAS potrf crashed at 41k x 41k here; torch's LAPACK does not.)
    """
    if not matrix.is_contiguous():
        raise ValueError("the in-place inverse needs a contiguous matrix")
    column_major = matrix.mT
    try:
        torch.linalg.cholesky(column_major, out=column_major)
    except torch.linalg.LinAlgError as error:
        raise ModelError(
            f"ease: the regularised Gram matrix is not positive definite: {error}"
        ) from error
    torch.cholesky_inverse(column_major, out=column_major)
    return matrix


@register
class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder (Steck, WWW 2019), closed form.

    B = argmin ||X - XB||² + λ||B||²  s.t. diag(B) = 0, solved as P = (XᵀX + λI)⁻¹,
    B_ij = -P_ij / P_jj (B_jj = 0). Scores are x_u B. The item x item matrix is dense, so
    memory grows with n_items²: one n² buffer of the solve precision (the inverse
    is computed in place; float64 adds a float32 copy for the weights), 1 GiB of float64 at
    ~11k items. ``solve_precision: float32`` halves it, for catalogues like Gowalla's 41k.
    """

    name = "ease"
    accepts_history = True

    class Config(ModelConfig):
        regularization: float = Field(250.0, gt=0, description="λ, the L2 weight on B")
        solve_precision: Literal["float64", "float32"] = Field(
            "float64", description="floating type of the Gram matrix and its inverse"
        )
        memory_limit_gib: float = Field(
            16.0, gt=0, description="refuse catalogues whose solve would need more memory"
        )

    def _fit(self, data: TrainData) -> None:
        x = data.interactions.user_items
        n_items, dtype = x.shape[1], np.dtype(self.config.solve_precision)
        needed_gib = n_items**2 * (dtype.itemsize + (4 if dtype != np.float32 else 0)) / 2**30
        if needed_gib > self.config.memory_limit_gib:
            raise ModelError(
                f"ease: {n_items:,} items need about {needed_gib:.1f} GiB for the dense "
                f"solve, above memory_limit_gib={self.config.memory_limit_gib}; raise the "
                "limit if the machine has the memory, set solve_precision: float32, or use "
                "item_knn"
            )
        with progress("EASE closed form (Gram, Cholesky, inverse)", total=2) as advance:
            gram = torch.from_numpy((x.T @ x).astype(dtype).toarray(order="C")).to(self.device)
            gram.diagonal().add_(self.config.regularization)
            advance()
            precision = _invert_spd_in_place(gram)
            advance()
        precision /= -precision.diagonal()
        precision.diagonal().zero_()
        self.weights = precision.to(torch.float32)

    def score(self, query: Query) -> torch.Tensor:
        self._require_fitted()
        history, weights = self.history_matrix(query), self.weights.to(self.device)
        if weights.device.type == "cpu":
            # sparse history rows x dense weights: reads only the history's rows of B, ~40x
            # faster than a dense product for one query over 8k items
            return torch.from_numpy(np.ascontiguousarray(history @ weights.numpy()))
        return _dense(history, self.device) @ weights

    def _state(self) -> dict[str, torch.Tensor]:
        return {"weights": self.weights}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.weights = tensors["weights"]
        if self.weights.shape != (self.n_items, self.n_items):
            raise ValueError(f"weights have shape {tuple(self.weights.shape)}")
