"""SASRec: Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.

A user is their item sequence. The last ``max_len`` items s₁..s_n (left-padded with a padding
token) are embedded with a shared item table M and learned positions P,

    E = √d · M[s] + P,   F⁽⁰⁾ = Dropout(E)

and pass through ``n_layers`` causal self-attention blocks, each the paper's (section III-C/D)

    S = F + Dropout(Attention(LayerNorm(F)))          (position t attends to positions ≤ t)
    F' = S + Dropout(FFN(LayerNorm(S))),  FFN(x) = W₂ ReLU(W₁ x + b₁) + b₂,  W₁, W₂ ∈ ℝ^{d×d}

— exactly ``torch.nn.TransformerEncoderLayer(norm_first=True, dim_feedforward=d,
activation="relu")`` (dropout also on the attention weights, as the official code) — then a
final LayerNorm (official code). The hidden state h_t at the last position predicts the next
item with shared embeddings, r(i | s₁..s_t) = ⟨h_t, M_i⟩; ``score`` returns these logits over
all items.

Attention mask: causal, and no position attends to a padding key (the official code masks
padding keys too); a padding position attends only to itself, so its (unused) output stays
finite and the output at a real position does not depend on how much padding precedes it.

Training: every position t of each user's training window predicts s_{t+1}. The window is the
last ``max_len + 1`` training items of each user (inputs = the first ``max_len`` of them,
targets = the last ``max_len``), once per user per epoch, users shuffled — as the official
code, which also trains on each user's last ``max_len`` positions. Losses (``loss``):

    ce   — cross-entropy over all items:  −log softmax_i(⟨h_t, M_i⟩)[s_{t+1}]   (default)
    bce  — the paper's loss (eq. 3), one sampled negative j per position:
           −log σ(⟨h_t, M_{s_{t+1}}⟩) − log(1 − σ(⟨h_t, M_j⟩))
    bpr  — −log σ(⟨h_t, M_{s_{t+1}}⟩ − ⟨h_t, M_j⟩), one sampled negative per position

each averaged over the non-padding positions. Negatives are uniform over the items with
training interactions that the user has not interacted with (the paper: not in the sequence).

Defaults (the paper's settings for its sparse Amazon data unless stated): 2 blocks, 1 head,
dropout 0.5, Adam lr 1e-3 (β 0.9/0.98 in the paper; torch's 0.9/0.999 here), batch 128,
no L2; d = 64 instead of the paper's 50 (the S3-Rec repository's SASRec, whose full-ranking
Beauty numbers the TIGER table copies, uses 64); ``max_len`` 20 (the P5/TIGER protocol's
history length; the paper uses 50 on Amazon); loss ``ce`` (full softmax over all items, as
the re-implementations that reach the TIGER-table numbers; the paper's BCE is ``loss="bce"``);
Xavier-normal item and position embeddings (as the PyTorch port pmixer/SASRec.pytorch). Up to
``epochs`` (200, the official code's 201) with evaluation every ``eval_every`` epochs and early
stopping after ``patience`` evaluations without improvement of the validation metric, the best
evaluated weights kept (S3-Rec's practice; the paper does not early-stop).

Text initialisation (``item_init="text"``): the item table starts as the PCA of the item text
vectors to d dimensions (:func:`semrec.models.mf.pca_projection`), rescaled to the mean row
norm of the random initialisation; training is unchanged.

Scoring: a query's ``history`` (its last ``max_len`` items) when given, else the user's last
``max_len`` training items, kept with the model. A user without any item is scored from an
all-padding sequence (one fixed, uninformative vector).
"""

from __future__ import annotations

import math
from typing import Literal, Self

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from semrec.errors import ModelError
from semrec.models.base import ModelConfig, Query, Recommender, TrainData, register
from semrec.models.mf import mean_row_norm, pca_projection
from semrec.training.loop import LoopSettings, run_epochs
from semrec.training.losses import bpr_loss
from semrec.training.samplers import sample_negatives

#: token of an empty slot; item index i is token i + 1
PADDING = 0


class SASRecConfig(ModelConfig):
    """SASRec hyperparameters; see the module docstring for where each default comes from."""

    embedding_size: int = Field(64, ge=1)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(1, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    max_len: int = Field(20, ge=1, description="history length: the last max_len items")
    loss: Literal["ce", "bce", "bpr"] = Field(
        "ce", description="ce: softmax over all items; bce: the paper's; bpr: pairwise"
    )
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(128, ge=1, description="users (training windows) per batch")
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0, description="Adam's L2 on all parameters")
    seed: int = 2024
    eval_every: int = Field(1, ge=0, description="epochs between monitor evaluations")
    patience: int | None = Field(10, ge=1, description="early stop after N flat evaluations")
    item_init: Literal["random", "text"] = Field(
        "random", description="text: start from the PCA of the item text vectors (needs them)"
    )

    @model_validator(mode="after")
    def _heads_divide_size(self) -> Self:
        if self.embedding_size % self.n_heads:
            raise ValueError(
                f"embedding_size {self.embedding_size} is not divisible by n_heads {self.n_heads}"
            )
        return self


def right_aligned(sequences: list[np.ndarray], width: int) -> np.ndarray:
    """Tokens [len(sequences), width]: each sequence's last ``width`` items as tokens (item
    index + 1), right-aligned, with ``PADDING`` before them."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    tokens = np.full((len(sequences), width), PADDING, dtype=np.int64)
    if lengths.sum() == 0:
        return tokens
    items = np.concatenate(sequences).astype(np.int64)
    rows = np.repeat(np.arange(len(sequences)), lengths)
    from_end = np.cumsum(lengths)[rows] - 1 - np.arange(len(items))
    keep = from_end < width
    tokens[rows[keep], width - 1 - from_end[keep]] = items[keep] + 1
    return tokens


def attention_mask(tokens: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Boolean mask [batch · heads, L, L], True = may not attend: future positions, and
    padding keys other than the position itself."""
    length = tokens.shape[1]
    future = torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)
    itself = torch.eye(length, dtype=torch.bool, device=tokens.device)
    padding_key = (tokens == PADDING).unsqueeze(1)  # [B, 1, L]
    mask = future | (padding_key & ~itself)
    return mask.repeat_interleave(n_heads, dim=0)


class SelfAttentiveEncoder(nn.Module):
    """Item tokens [B, L] -> hidden states [B, L, d] (equations in the module docstring)."""

    def __init__(
        self,
        n_items: int,
        embedding_size: int,
        n_layers: int,
        n_heads: int,
        dropout: float,
        max_len: int,
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.item_embedding = nn.Embedding(n_items + 1, embedding_size, padding_idx=PADDING)
        self.position_embedding = nn.Embedding(max_len, embedding_size)
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                embedding_size,
                n_heads,
                dim_feedforward=embedding_size,
                dropout=dropout,
                activation="relu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(n_layers)
        )
        self.final_norm = nn.LayerNorm(embedding_size)
        nn.init.xavier_normal_(self.item_embedding.weight)
        nn.init.xavier_normal_(self.position_embedding.weight)
        with torch.no_grad():
            self.item_embedding.weight[PADDING].zero_()

    def item_weights(self) -> torch.Tensor:
        """M [n_items, d]: row i is item index i (the padding row left out)."""
        return self.item_embedding.weight[1:]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        scale = math.sqrt(self.item_embedding.embedding_dim)
        hidden = self.item_embedding(tokens) * scale + self.position_embedding.weight[:length]
        hidden = self.embedding_dropout(hidden)
        mask = attention_mask(tokens, self.n_heads)
        for block in self.blocks:
            hidden = block(hidden, src_mask=mask)
        return self.final_norm(hidden)


def next_item_loss(
    hidden: torch.Tensor,
    item_weights: torch.Tensor,
    targets: torch.Tensor,
    loss: str,
    negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean loss of hidden states [P, d] predicting item indices ``targets`` [P] (negatives
    [P] item indices for ``bce`` and ``bpr``); see the module docstring."""
    if loss == "ce":
        return F.cross_entropy(hidden @ item_weights.T, targets)
    if negatives is None:
        raise ValueError(f"loss {loss!r} needs one negative per position")
    positive = (hidden * item_weights[targets]).sum(-1)
    negative = (hidden * item_weights[negatives]).sum(-1)
    if loss == "bce":
        return (F.softplus(-positive) + F.softplus(negative)).mean()
    if loss == "bpr":
        return bpr_loss(positive, negative)
    raise ValueError(f"unknown loss {loss!r}; expected ce, bce or bpr")


@register
class SASRec(Recommender):
    """SASRec (Kang & McAuley, ICDM 2018); see the module docstring."""

    name = "sasrec"
    Config = SASRecConfig
    accepts_history = True

    @property
    def needs_item_embeddings(self) -> bool:
        """True when the items start from their text (``item_init="text"``)."""
        return self.config.item_init == "text"

    def _module(self) -> SelfAttentiveEncoder:
        config = self.config
        return SelfAttentiveEncoder(
            self.n_items,
            config.embedding_size,
            config.n_layers,
            config.n_heads,
            config.dropout,
            config.max_len,
        )

    def _fit(self, data: TrainData) -> None:
        config = self.config
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        self.module = self._module().to(self.device)
        if config.item_init == "text":
            self._initialise_from_text(data)
        windows = right_aligned(data.interactions.sequences(), config.max_len + 1)
        # scoring a known user reads their last max_len training items
        self.train_tokens = torch.from_numpy(windows[:, 1:].copy()).to(self.device)
        inputs, targets = windows[:, :-1], windows[:, 1:]
        has_target = inputs != PADDING  # padding sits on the left: a real input precedes a target
        train_users = np.flatnonzero(has_target.any(axis=1))
        if len(train_users) == 0:
            raise ModelError(f"{self.name}: no user has two training items to learn from")
        user_items = data.interactions.user_items
        target_rows, target_columns = np.nonzero(has_target)
        device = self.device
        inputs_t = torch.from_numpy(inputs).to(device)
        targets_t = torch.from_numpy(targets - 1).to(device)  # item indices (-1 at padding)
        has_target_t = torch.from_numpy(has_target).to(device)
        optimizer = torch.optim.Adam(
            self.module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )

        def train_epoch() -> float:
            order = rng.permutation(train_users)
            negatives_t = None
            if config.loss != "ce":  # one negative per target position, drawn for the epoch
                negatives = np.full(has_target.shape, -1, dtype=np.int64)
                negatives[target_rows, target_columns] = sample_negatives(
                    user_items, target_rows, rng
                )
                negatives_t = torch.from_numpy(negatives).to(device)
            total, n_batches = torch.zeros((), device=device), 0
            for start in range(0, len(order), config.batch_size):
                batch = torch.from_numpy(order[start : start + config.batch_size]).to(device)
                hidden = self.module(inputs_t[batch])
                where = has_target_t[batch]
                loss = next_item_loss(
                    hidden[where],
                    self.module.item_weights(),
                    targets_t[batch][where],
                    config.loss,
                    None if negatives_t is None else negatives_t[batch][where],
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
                n_batches += 1
            return total.item() / n_batches

        settings = LoopSettings.for_config(data.work_dir, config)
        self.history = run_epochs(
            settings, self.module, optimizer, rng, train_epoch, data.monitor, "SASRec epochs"
        ).history

    def _initialise_from_text(self, data: TrainData) -> None:
        weight = self.module.item_embedding.weight
        items = pca_projection(data.require_item_embeddings(self.name), self.config.embedding_size)
        items *= mean_row_norm(weight[1:]) / np.linalg.norm(items, axis=1).mean()
        with torch.no_grad():
            weight[1:].copy_(torch.from_numpy(items.astype(np.float32)))

    def _query_tokens(self, query: Query) -> torch.Tensor:
        if query.history is None:
            return self.train_tokens[torch.from_numpy(self.check_users(query)).to(self.device)]
        for history in query.history:
            if len(history) and (history.min() < 0 or history.max() >= self.n_items):
                raise ModelError(
                    f"{self.name}: history holds item indices outside 0..{self.n_items - 1}"
                )
        tokens = right_aligned(query.history, self.config.max_len)
        return torch.from_numpy(tokens).to(self.device)

    @torch.no_grad()
    def score(self, query: Query) -> torch.Tensor:
        users, items = self.user_item_vectors(query)
        return users @ items.T

    @torch.no_grad()
    def user_item_vectors(self, query: Query) -> tuple[torch.Tensor, torch.Tensor]:
        """The query's sequence representations [B, d] and the item embeddings [n_items, d],
        whose inner products are :meth:`score` (a vector index can serve them; the item
        embeddings are SASRec's collaborative item vectors for tokenizers)."""
        self._require_fitted()
        self.module.eval()
        hidden = self.module(self._query_tokens(query))[:, -1]
        return hidden, self.module.item_weights()

    def _state(self) -> dict[str, torch.Tensor]:
        state = {f"module.{name}": value for name, value in self.module.state_dict().items()}
        state["train_tokens"] = self.train_tokens
        return state

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.module = self._module()
        self.module.load_state_dict(
            {k.removeprefix("module."): v for k, v in tensors.items() if k.startswith("module.")}
        )
        self.module.to(self.device).eval()
        train_tokens = tensors["train_tokens"]
        if tuple(train_tokens.shape) != (self.n_users, self.config.max_len):
            raise ValueError(
                f"train_tokens has shape {tuple(train_tokens.shape)}, expected "
                f"({self.n_users}, {self.config.max_len})"
            )
        self.train_tokens = train_tokens.to(self.device)
