"""AlphaRec — Sheng et al., "Language Representations Can be What Recommenders Need:
Findings and Potentials", ICLR 2025 (reference code: LehengTHU/AlphaRec).

There are no ID embeddings. An item is its frozen language representation s_i (the text
vector of its title or description); a user is the mean of the representations of the items
in their training history, s_u = mean_{i ∈ N(u)} s_i. One MLP maps both into the
recommendation space, LightGCN propagation smooths them over the training graph, and
training is a sampled softmax (InfoNCE) over cosine similarities:

    e⁽⁰⁾ = MLP(s) = W₂ · LeakyReLU(W₁ s + b₁) + b₂
    E⁽ᵏ⁺¹⁾ = Â E⁽ᵏ⁾,  E = (E⁽⁰⁾ + ... + E⁽ᴷ⁾) / (K + 1)
    loss = mean −log( e^(cos(u,i)/τ) / (e^(cos(u,i)/τ) + Σ_{j ∈ 256 sampled} e^(cos(u,j)/τ)) )

Scores are cosine similarities of the propagated embeddings. Defaults are the reference
code's commands: output size 64, 2 layers, τ 0.15 (0.2 for its Games data), 256 negatives
per pair, batch 4096, Adam at learning rate 5e-4, no weight decay, up to 500 epochs with
patience 20 on the validation Recall@20.

The MLP's hidden layer: the reference code sizes it by the input so that the MLP keeps about
4.8M weights whatever the language model (3072 → 1536 for text-embedding-3-large, 768 →
6144 for BERT). ``mlp_hidden_size=None`` applies that rule to any input size (384-d
all-MiniLM-L6-v2 → 10,752); a smaller explicit size trains much faster on a CPU.

Exact shortcut: W₁ s_u + b₁ = mean_{i ∈ N(u)} (W₁ s_i + b₁), so users' first layer is the
row-normalised interaction matrix times the items' first layer (a sparse product), never a
dense [users × text dim] matrix.

Because items enter through their text, AlphaRec scores items it never saw in training
(:meth:`AlphaRec.score_new_items`, zero-shot) and takes a user intention written as text
(:meth:`AlphaRec.score_intention`): the query's language vector goes through the trained MLP
and is mixed with the user's representation, ẑ = normalize((1 − α)·ẑ_u + α·ẑ_q) with ẑ unit
vectors; α (``intention_weight``, default 0.5) is semrec's choice — the reference code does
not release this part. Without a user, the query alone is the representation.

Positives are user draws (``positives="users"``): the reference code's training set cycles
through the users, each time with one of their items drawn at random, so every user weighs
the same. Deviation: negatives are drawn uniformly among the items each user has not
interacted with (the sampler shared with the other models).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from semrec.errors import ModelError
from semrec.models.base import Query, TrainData, register
from semrec.models.graph import (
    Graph,
    GraphConfig,
    GraphRecommender,
    SparseProduct,
    gather_rows,
    sparse_tensor,
    users_and_items,
)

#: weights of the reference MLP for text-embedding-3-large (3072 → 1536 → 64)
REFERENCE_MLP_WEIGHTS = 3072 * 1536 + 1536 * 64


def reference_hidden_size(input_size: int, output_size: int) -> int:
    """The hidden size that gives the MLP the reference code's number of weights."""
    return max(1, round(REFERENCE_MLP_WEIGHTS / (input_size + output_size)))


class LanguageProjection(nn.Module):
    """AlphaRec's MLP over frozen item vectors and mean-of-history user vectors, followed by
    LightGCN propagation."""

    def __init__(
        self,
        item_text: torch.Tensor,
        history_mean: tuple[torch.Tensor, torch.Tensor],
        hidden_size: int,
        output_size: int,
        n_layers: int,
    ) -> None:
        super().__init__()
        self.register_buffer("item_text", item_text)
        self.history_mean = history_mean  # row-normalised user x item matrix and its transpose
        self.n_layers = n_layers
        self.hidden = nn.Linear(item_text.shape[1], hidden_size)
        self.output = nn.Linear(hidden_size, output_size)

    @property
    def n_users(self) -> int:
        return self.history_mean[0].shape[0]

    def project(self, text: torch.Tensor) -> torch.Tensor:
        """MLP(s) for language vectors that are not in the training graph."""
        return self.output(F.leaky_relu(self.hidden(text)))

    def ego(self) -> torch.Tensor:
        """Layer 0 of users then items: MLP of the mean history vector / the item vector."""
        item_hidden = self.hidden(self.item_text)
        user_hidden = SparseProduct.apply(*self.history_mean, item_hidden)
        return self.output(F.leaky_relu(torch.cat([user_hidden, item_hidden])))

    def propagate(self, graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
        layer = self.ego()
        total = layer
        for _ in range(self.n_layers):
            layer = graph.product(layer)
            total = total + layer
        final = total / (self.n_layers + 1)
        return users_and_items(final, self.n_users)


def history_mean_operator(
    user_items: sp.csr_matrix, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-normalised user x item matrix (each user's row averages their items), and its
    transpose, as CSR tensors; a user without training items gets an empty row."""
    matrix = user_items.astype(np.float32).tocsr()
    matrix.data[:] = 1.0
    counts = np.diff(matrix.indptr)
    matrix.data /= np.repeat(np.maximum(counts, 1), counts).astype(np.float32)
    return sparse_tensor(matrix, device), sparse_tensor(matrix.T.tocsr(), device)


class AlphaRecConfig(GraphConfig):
    embedding_size: int = Field(64, ge=1, description="output size of the MLP")
    n_layers: int = Field(2, ge=0)
    epochs: int = Field(500, ge=1)
    batch_size: int = Field(4096, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    eval_every: int = Field(1, ge=0)
    patience: int | None = Field(20, ge=1)
    loss: Literal["bpr", "softmax"] = "softmax"
    negatives: int = Field(256, ge=1)
    temperature: float = Field(0.15, gt=0)
    mlp_hidden_size: int | None = Field(
        None, ge=1, description="None: the reference code's rule (about 4.8M MLP weights)"
    )
    item_init: Literal["random"] = Field("random", description="AlphaRec has no ID embeddings")
    intention_weight: float = Field(0.5, ge=0, le=1, description="α of score_intention")


@register
class AlphaRec(GraphRecommender):
    """AlphaRec (Sheng et al., ICLR 2025); see the module docstring."""

    name = "alpharec"
    Config = AlphaRecConfig
    needs_item_embeddings = True

    def _fit(self, data: TrainData) -> None:
        self._item_text = torch.from_numpy(data.require_item_embeddings(self.name))
        super()._fit(data)

    def _module(self) -> LanguageProjection:
        config = self.config
        text_size = self._item_text.shape[1]
        hidden = config.mlp_hidden_size or reference_hidden_size(text_size, config.embedding_size)
        return LanguageProjection(
            self._item_text.to(self.device),
            history_mean_operator(self.seen, self.device),
            hidden,
            config.embedding_size,
            config.n_layers,
        )

    def _batch_terms(self, users, positives, negatives):
        user_final, item_final = self.module.propagate(self.graph)
        scores = self._pair_scores(gather_rows(user_final, users), item_final, positives, negatives)
        return *scores, torch.zeros((), device=self.device)

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self._item_text = tensors["module.item_text"].clone()  # safetensors may misalign
        super()._load_state(tensors)

    # --- language queries ----------------------------------------------------------------
    def _language_vectors(self, vectors: np.ndarray, what: str) -> torch.Tensor:
        self._require_fitted()
        vectors = np.asarray(vectors, dtype=np.float32)
        expected = self._item_text.shape[1]
        if vectors.ndim != 2 or vectors.shape[1] != expected:
            raise ModelError(
                f"{self.name}: {what} must be [n, {expected}] vectors from the encoder the "
                f"model was trained with, got shape {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            raise ModelError(f"{self.name}: {what} hold NaN or infinite values")
        return torch.from_numpy(vectors).to(self.device)

    @torch.no_grad()
    def project_text(self, vectors: np.ndarray) -> torch.Tensor:
        """Unit vectors in the recommendation space for language vectors (new items, queries)."""
        self.module.eval()
        text = self._language_vectors(vectors, "language vectors")
        return F.normalize(self.module.project(text), dim=1)

    def _unit_finals(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = self.final_embeddings()
        return F.normalize(users, dim=1), F.normalize(items, dim=1)

    @torch.no_grad()
    def score_new_items(self, query: Query, item_vectors: np.ndarray) -> torch.Tensor:
        """Scores [len(query), n_new] of items outside the training catalogue, from their
        language vectors alone (zero-shot): a new item has no edges, so its propagated
        embedding is its MLP output, and cosine scores ignore the 1/(K+1) scale."""
        users = torch.from_numpy(self.check_users(query)).to(self.device)
        return self._unit_finals()[0][users] @ self.project_text(item_vectors).T

    @torch.no_grad()
    def score_intention(
        self, intention_vectors: np.ndarray, users: np.ndarray | None = None
    ) -> torch.Tensor:
        """Scores [n_queries, n_items] for intentions written as text and embedded by the
        training encoder, each mixed with a known user's representation when ``users`` is
        given (one user per query)."""
        query = self.project_text(intention_vectors)
        user_final, item_final = self._unit_finals()
        if users is not None:
            known = self.check_users(Query.users(users))
            if len(known) != len(query):
                raise ModelError(f"{self.name}: {len(query)} intention(s) but {len(known)} user(s)")
            alpha = self.config.intention_weight
            mixed = (1 - alpha) * user_final[torch.from_numpy(known).to(self.device)]
            query = F.normalize(mixed + alpha * query, dim=1)
        return query @ item_final.T
