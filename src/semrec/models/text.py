"""Text-aware baselines that the semantic-fusion papers compare against: recommending by text
similarity alone (``text_knn``), and LightGCN whose items concatenate an ID part and a
projection of their text (``lightgcn_concat``). The third such baseline, an ID model whose
embeddings start from the text, is the ``item_init="text"`` option of ``mf_bpr`` and the
graph models (:mod:`semrec.models.mf`).

Every model here needs item vectors (``TrainData.item_embeddings``, e.g. encoded item text);
they are unit-normalised on entry, so cosine similarity is an inner product.

text_knn — EMB-KNN of the AlphaRec paper (Sheng et al., "Language Representations Can be What
Recommenders Need: Findings and Potentials", ICLR 2025), the cold-start baseline that ranks
by language similarity alone. No training:

    s_i = t_i / ‖t_i‖,   p_u = mean_{i ∈ N(u)} s_i,   score(u, i) = cos(p_u, s_i)

where N(u) is the user's training items, or the query's history (so it answers queries for
users never seen in training). An empty history scores every item 0.

lightgcn_concat — ID+text concatenation, the simplest fusion: LightGCN (He et al., SIGIR
2020) over ego embeddings

    item:  e⁽⁰⁾_i = [q_i ‖ W s_i]      q_i ∈ R^(d/2) learned, W ∈ R^((d/2) x dim) learned
    user:  e⁽⁰⁾_u = [p_u ‖ p'_u]       both halves learned IDs

with s_i the frozen unit text vector and d = ``embedding_size`` (even). Propagation, BPR and
the L2 term on the batch's ego embeddings are LightGCN's (the L2 term therefore also
shrinks W s_i). q, p and W start as N(0, 0.1²) — LightGCN's initialisation — so that for
unit text vectors the two halves start at the same scale; W has no bias. A separate
registered model rather than an option of ``lightgcn``: it has other parameters (W, the
frozen text), always needs item vectors, and has a score split that plain LightGCN lacks.

Propagation mixes rows, never columns, so the final embeddings keep the two halves and the
score is their sum: ⟨e_u, e_i⟩ = ⟨e_u[:d/2], e_i[:d/2]⟩ + ⟨e_u[d/2:], e_i[d/2:]⟩, the ID
part and the text part (:meth:`LightGCNConcat.score_parts`; with ``loss="softmax"`` the
split is of the unit-normalised final embeddings). PRORec ("Progressive Collaborative and
Semantic Knowledge Fusion for Generative Recommendation", arXiv:2502.06269, 2025) observes
that naive concatenation of semantic and collaborative representations suffers from
"semantic domination": the semantic part overshadows the collaborative one. The split lets
a benchmark measure whether that happens here: the text half's share of |score|, and the
ranking quality of each half alone.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from semrec.models.base import (
    ModelConfig,
    Query,
    Recommender,
    TrainData,
    bool_mask,
    register,
)
from semrec.models.graph import GraphConfig, LightGCN, PropagatedEmbeddings


def _unit_text(data: TrainData, model: str) -> torch.Tensor:
    return F.normalize(torch.from_numpy(data.require_item_embeddings(model)), dim=1)


@register
class TextKNN(Recommender):
    """EMB-KNN of the AlphaRec paper (Sheng et al., ICLR 2025): cosine similarity between the
    mean text vector of a user's items and each item's text vector; see the module docstring.
    """

    name = "text_knn"
    accepts_history = True
    needs_item_embeddings = True

    class Config(ModelConfig):
        pass

    def _fit(self, data: TrainData) -> None:
        self.item_vectors = _unit_text(data, self.name).to(self.device)

    @torch.no_grad()
    def score(self, query: Query) -> torch.Tensor:
        self._require_fitted()
        history = bool_mask(self.history_matrix(query), self.device).float()
        counts = history.sum(dim=1, keepdim=True).clamp(min=1)
        profiles = F.normalize(history @ self.item_vectors / counts, dim=1)  # mean, unit length
        return profiles @ self.item_vectors.T

    def _state(self) -> dict[str, torch.Tensor]:
        return {"item_vectors": self.item_vectors}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        vectors = tensors["item_vectors"]
        if vectors.ndim != 2 or len(vectors) != self.n_items:
            raise ValueError(f"item_vectors have shape {tuple(vectors.shape)}")
        self.item_vectors = vectors.to(self.device, copy=True)  # aligned (see LightGCNConcat)


class ConcatTextEmbeddings(PropagatedEmbeddings):
    """LightGCN's propagation over ego embeddings [q_i ‖ W s_i] for items and [p_u ‖ p'_u]
    for users. ``self.embedding`` holds the users only (the items' rows are built by
    :meth:`ego`)."""

    def __init__(
        self, n_users: int, item_text: torch.Tensor, embedding_size: int, n_layers: int
    ) -> None:
        super().__init__(n_users, 0, embedding_size, n_layers, include_ego=True)
        half = embedding_size // 2
        self.item_id = nn.Embedding(len(item_text), half)
        self.text_projection = nn.Linear(item_text.shape[1], half, bias=False)
        nn.init.normal_(self.item_id.weight, std=0.1)
        nn.init.normal_(self.text_projection.weight, std=0.1)
        self.register_buffer("item_text", item_text)

    def ego(self) -> torch.Tensor:
        items = torch.cat([self.item_id.weight, self.text_projection(self.item_text)], dim=1)
        return torch.cat([self.embedding.weight, items])


class ConcatConfig(GraphConfig):
    item_init: Literal["random"] = Field(
        "random", description="the item ID half starts random; the text enters through W"
    )

    @field_validator("embedding_size")
    @classmethod
    def _even(cls, size: int) -> int:
        if size % 2:
            raise ValueError(f"must be even (an ID half and a text half), got {size}")
        return size


@register
class LightGCNConcat(LightGCN):
    """LightGCN over [item ID ‖ projected item text] ego embeddings; see the module docstring
    (and PRORec's semantic-domination observation, which :meth:`score_parts` measures)."""

    name = "lightgcn_concat"
    Config = ConcatConfig
    needs_item_embeddings = True

    def _fit(self, data: TrainData) -> None:
        self._item_text = _unit_text(data, self.name)
        super()._fit(data)

    def _module(self) -> ConcatTextEmbeddings:
        config = self.config
        return ConcatTextEmbeddings(
            self.n_users, self._item_text.to(self.device), config.embedding_size, config.n_layers
        )

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        # a copy: a tensor read from safetensors may be misaligned, and matrix products over
        # misaligned memory take another kernel path, changing scores in the last bit
        self._item_text = tensors["module.item_text"].clone()
        super()._load_state(tensors)

    @torch.no_grad()
    def score_parts(self, query: Query) -> tuple[torch.Tensor, torch.Tensor]:
        """The ID part and the text part of :meth:`score`, each [len(query), n_items]; they
        sum to the score (up to float rounding)."""
        self._require_fitted()
        users = torch.from_numpy(self.check_users(query)).to(self.device)
        user_final, item_final = self.final_embeddings()
        user_final = user_final[users]
        half = self.config.embedding_size // 2
        return (
            user_final[:, :half] @ item_final[:, :half].T,
            user_final[:, half:] @ item_final[:, half:].T,
        )
