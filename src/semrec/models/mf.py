"""Matrix factorization trained with BPR (Rendle et al., "BPR: Bayesian Personalized Ranking
from Implicit Feedback", UAI 2009).

score(u, i) = <p_u, q_i>. Each step draws, for every training pair (u, i), one item j the
user has not interacted with, and minimises -log σ(score(u,i) - score(u,j)) plus
``weight_decay`` x the L2 norm of the batch's embeddings (as the LightGCN reference code does
for its MF baseline). Defaults follow that baseline on Gowalla: 64 dimensions, Adam with
learning rate 1e-3, batch 2048, L2 1e-4.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn

from semrec.models.base import ModelConfig, Query, Recommender, TrainData, register
from semrec.training.loop import LoopSettings, bpr_epoch, run_epochs
from semrec.training.losses import l2_penalty


class BPRConfig(ModelConfig):
    """Hyperparameters of every embedding model trained with BPR (shared vocabulary)."""

    embedding_size: int = Field(64, ge=1)
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(2048, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    seed: int = 2024


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

    def _fit(self, data: TrainData) -> None:
        config = self.config
        user_items = data.interactions.user_items
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        self.module = MatrixFactorization(
            self.n_users, self.n_items, config.embedding_size, config.weight_decay
        ).to(self.device)
        optimizer = torch.optim.Adam(self.module.parameters(), lr=config.learning_rate)

        def train_epoch() -> float:
            return bpr_epoch(
                self.module,
                optimizer,
                user_items,
                config.batch_size,
                rng,
                self.device,
            )

        settings = LoopSettings(
            epochs=config.epochs,
            checkpoint_dir=None if data.work_dir is None else data.work_dir / "checkpoint",
            history_path=None if data.work_dir is None else data.work_dir / "history.jsonl",
        )
        run_epochs(settings, self.module, optimizer, rng, train_epoch, None, "MF-BPR epochs")

    @torch.no_grad()
    def score(self, query: Query) -> torch.Tensor:
        self._require_fitted()
        users = torch.from_numpy(self.check_users(query)).to(self.device)
        return self.module.user_embedding(users) @ self.module.item_embedding.weight.T

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
