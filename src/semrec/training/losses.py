"""Losses for implicit-feedback training."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(positive_scores: torch.Tensor, negative_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalized ranking (Rendle et al., UAI 2009): mean -log sigmoid(pos - neg)."""
    return F.softplus(negative_scores - positive_scores).mean()


def l2_penalty(*embeddings: torch.Tensor) -> torch.Tensor:
    """Sum of squared norms / 2, averaged over the batch (as the LightGCN reference code)."""
    batch_size = embeddings[0].shape[0]
    return sum(e.pow(2).sum() for e in embeddings) / (2 * batch_size)


def info_nce(view_a: torch.Tensor, view_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between two views of the same rows: row i of each view is the positive pair,
    the other rows of ``view_b`` the negatives; cosine similarity divided by ``temperature``."""
    # dividing the [n, d] view, not the [n, n] logits, saves a pass over n² numbers each way
    logits = (F.normalize(view_a, dim=1) / temperature) @ F.normalize(view_b, dim=1).T
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def sampled_softmax_loss(
    positive_scores: torch.Tensor, negative_scores: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Sampled softmax (InfoNCE over sampled negatives), as AlphaRec trains:
    mean -log( e^(s⁺/τ) / (e^(s⁺/τ) + Σⱼ e^(sⱼ⁻/τ)) ), for scores [B] and [B, N]."""
    logits = torch.cat([positive_scores.unsqueeze(1), negative_scores], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))
