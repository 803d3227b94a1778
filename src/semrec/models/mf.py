"""Matrix factorization trained with BPR (Rendle et al., "BPR: Bayesian Personalized Ranking
from Implicit Feedback", UAI 2009).

score(u, i) = <p_u, q_i>. Each step draws, for every training pair (u, i), one item j the
user has not interacted with, and minimises -log σ(score(u,i) - score(u,j)) plus
``weight_decay`` x the L2 norm of the batch's embeddings (as the LightGCN reference code does
for its MF baseline). Defaults follow that baseline on Gowalla: 64 dimensions, Adam with
learning rate 1e-3, batch 2048, L2 1e-4.

Text initialisation (``item_init="text"``, shared with the graph models through
:class:`BPRConfig`): the text-initialised baseline of the semantic-fusion papers (the
AlphaRec paper, Sheng et al., ICLR 2025, writes it "XSimGCL_t" for its graph model), an ID
model that starts from the items' language vectors instead of noise. Item embeddings start
as the text vectors reduced to ``embedding_size`` by PCA (:func:`pca_projection`), rescaled
so that their mean row norm equals that of the model's own random initialisation (drawn as
usual, then measured); each user starts as the mean of their training items' initial
vectors (a user without training items at 0). Training then proceeds unchanged: the text
only sets the starting point, and nothing keeps the embeddings near it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from semrec.errors import ModelError
from semrec.models.base import ModelConfig, Query, Recommender, TrainData, register
from semrec.training.loop import LoopSettings, Objective, bpr_epoch, run_epochs
from semrec.training.losses import l2_penalty


class BPRConfig(ModelConfig):
    """Hyperparameters of every embedding model trained with BPR (shared vocabulary)."""

    embedding_size: int = Field(64, ge=1)
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(2048, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    seed: int = 2024
    item_init: Literal["random", "text"] = Field(
        "random", description="text: start from the PCA of the item text vectors (needs them)"
    )
    positives: Literal["pairs", "users"] = Field(
        "pairs",
        description="pairs: every training pair once an epoch; users: as many draws of a "
        "uniform user and one of their items (the official LightGCN/NGCF sampling)",
    )


def pca_projection(vectors: np.ndarray, n_components: int) -> np.ndarray:
    """Rows of ``vectors`` [n, dim] projected on their ``n_components`` principal axes, as
    float64 [n, n_components], largest variance first.

    Deterministic: an exact eigendecomposition of the [dim, dim] scatter matrix of the centred
    rows (no randomized SVD), and each axis signed so that the projection's entry of largest
    magnitude is positive (the sign convention of scikit-learn's ``svd_flip``).
    """
    x = np.asarray(vectors, dtype=np.float64)
    n_rows, dim = x.shape
    if not 1 <= n_components <= min(dim, n_rows - 1):
        raise ModelError(
            f"PCA to {n_components} dimensions needs at least {n_components} text dimensions "
            f"and {n_components + 1} items; the text vectors are {n_rows} x {dim} (lower "
            "embedding_size, or use item_init='random')"
        )
    centred = x - x.mean(axis=0)
    _, axes = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    projection = centred @ axes[:, ::-1][:, :n_components]
    largest = np.abs(projection).argmax(axis=0)
    signs = np.sign(projection[largest, np.arange(n_components)])
    return projection * np.where(signs == 0, 1.0, signs)


def text_initial_embeddings(
    vectors: np.ndarray, user_items: sp.csr_matrix, embedding_size: int, item_row_norm: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial user and item embeddings from item text (``item_init="text"``), float32.

    Items: the PCA projection of ``vectors`` to ``embedding_size`` dimensions, scaled so the
    mean row norm is ``item_row_norm``. Users: the mean of their training items' rows.
    """
    items = pca_projection(vectors, embedding_size)
    items *= item_row_norm / np.linalg.norm(items, axis=1).mean()
    binary = user_items.astype(np.float64).tocsr()
    binary.data[:] = 1.0
    counts = np.asarray(binary.sum(axis=1)).ravel()
    users = (binary @ items) / np.maximum(counts, 1)[:, None]
    return (
        torch.from_numpy(users.astype(np.float32)),
        torch.from_numpy(items.astype(np.float32)),
    )


def mean_row_norm(weight: torch.Tensor) -> float:
    return weight.detach().norm(dim=1).mean().item()


class MatrixFactorization(nn.Module):
    def __init__(
        self, n_users: int, n_items: int, embedding_size: int, weight_decay: float = 0.0
    ) -> None:
        super().__init__()
        self.weight_decay = weight_decay
        self.user_embedding = nn.Embedding(n_users, embedding_size)
        self.item_embedding = nn.Embedding(n_items, embedding_size)
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)

    def forward(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """BPR loss terms: positive scores, negative scores, weighted L2 penalty of the batch."""
        user = self.user_embedding(users)
        positive = self.item_embedding(positives)
        negative = self.item_embedding(negatives)
        return (
            (user * positive).sum(-1),
            (user * negative).sum(-1),
            self.weight_decay * l2_penalty(user, positive, negative),
        )


@register
class MFBPR(Recommender):
    """Matrix factorization with BPR loss; see the module docstring."""

    name = "mf_bpr"

    Config = BPRConfig

    @property
    def needs_item_embeddings(self) -> bool:
        """True when the items start from their text (``item_init="text"``)."""
        return self.config.item_init == "text"

    def _fit(self, data: TrainData) -> None:
        config = self.config
        user_items = data.interactions.user_items
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        self.module = MatrixFactorization(
            self.n_users, self.n_items, config.embedding_size, config.weight_decay
        ).to(self.device)
        if config.item_init == "text":
            users, items = text_initial_embeddings(
                data.require_item_embeddings(self.name),
                user_items,
                config.embedding_size,
                mean_row_norm(self.module.item_embedding.weight),
            )
            with torch.no_grad():
                self.module.user_embedding.weight.copy_(users)
                self.module.item_embedding.weight.copy_(items)
        optimizer = torch.optim.Adam(self.module.parameters(), lr=config.learning_rate)

        def train_epoch() -> float:
            return bpr_epoch(
                self.module,
                optimizer,
                user_items,
                config.batch_size,
                rng,
                self.device,
                Objective(positives=config.positives),
            )

        settings = LoopSettings.for_config(data.work_dir, config)
        run_epochs(settings, self.module, optimizer, rng, train_epoch, None, "MF-BPR epochs")

    @torch.no_grad()
    def score(self, query: Query) -> torch.Tensor:
        self._require_fitted()
        users = torch.from_numpy(self.check_users(query)).to(self.device)
        return self.module.user_embedding(users) @ self.module.item_embedding.weight.T

    @torch.no_grad()
    def user_item_vectors(self, query: Query) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors [B, d] and item vectors [n_items, d] whose inner products are
        :meth:`score` (serving retrieves from them with a vector index)."""
        self._require_fitted()
        users = torch.from_numpy(self.check_users(query)).to(self.device)
        return self.module.user_embedding(users), self.module.item_embedding.weight

    def _state(self) -> dict[str, torch.Tensor]:
        return {
            "user_embedding": self.module.user_embedding.weight,
            "item_embedding": self.module.item_embedding.weight,
        }

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.module = MatrixFactorization(self.n_users, self.n_items, self.config.embedding_size)
        self.module.user_embedding.weight.data.copy_(tensors["user_embedding"])
        self.module.item_embedding.weight.data.copy_(tensors["item_embedding"])
        self.module.to(self.device).eval()
