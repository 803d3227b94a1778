"""Item tokenizers: item vectors -> semantic IDs (:class:`ItemCodes`), and their quality.

Tokenizers
----------
- **RQ-VAE** (:class:`RQVAETokenizer`), as in TIGER (Rajput et al., "Recommender Systems with
  Generative Retrieval", NeurIPS 2023): an MLP encoder maps an item vector x to a latent z;
  residual quantization picks, level by level, the nearest codeword (L2) of that level's
  codebook for the current residual::

      r_1 = z,   c_l = argmin_k ||r_l - e_{l,k}||,   r_{l+1} = r_l - e_{l,c_l},
      z_q = sum_l e_{l,c_l}

  and an MLP decoder (the encoder's mirror) reconstructs x from z_q, with the straight-through
  estimator carrying the decoder's gradient to the encoder. Loss::

      ||x - x_hat||^2 + sum_l ( ||sg[r_l] - e_{l,c_l}||^2 + beta ||r_l - sg[e_{l,c_l}]||^2 )

  with beta = 0.25 (every squared norm is averaged over the batch and the dimensions).
  Against codebook collapse: each level's codebook starts as k-means centroids of that level's
  residuals over all items, and after every epoch but the last, codewords that no item chose
  are reset to randomly drawn current residuals ("dead-code restart").
- **Residual k-means** (:class:`ResidualKMeansTokenizer`): the same residual quantization
  without a network: k-means (k-means++ init, fixed Lloyd iterations) on the vectors, then on
  the residuals, level after level. Faster; a common baseline (e.g. in LETTER and GRID).
- **Trivial indexings** of Hua et al. ("How to Index Item IDs for Recommendation Foundation
  Models", SIGIR-AP 2023): :func:`random_codes` (each item the base-K digits of a random
  permutation) and :func:`sequential_codes` (the item index, or its position in a given order,
  in base-K digits). Unique by construction.

Quantized tokenizers give every item an L-level code; items that share one are told apart by
an extra last token 0, 1, 2, ... (TIGER), so their final codes have L + 1 levels, the last of
size "largest collision group" (1 when nothing collides). :func:`tokenizer_quality` reports,
before any decoder is trained, what makes a tokenizer good or bad: codebook usage and entropy
per level, the collision rate before de-duplication and the reconstruction error.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import torch
from pydantic import Field, ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as save_safetensors
from torch import nn

from semrec.atomic import write_bytes_atomic
from semrec.errors import ConfigError, DataError, ModelError
from semrec.models.base import ModelConfig, Query, Recommender, default_device
from semrec.models.generative.codes import ItemCodes
from semrec.progress import progress

log = logging.getLogger(__name__)

CODES_FORMAT = "semrec-item-codes"
CODES_FORMAT_VERSION = 1


# --- tokenizer input -------------------------------------------------------------------------
def _check_vectors(vectors: np.ndarray, what: str) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0 or vectors.shape[1] == 0:
        raise ModelError(f"{what} must be a non-empty [n_items, dim] array, got {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ModelError(f"{what} hold NaN or infinite values")
    return vectors


def _scale(vectors: np.ndarray, scaling: str) -> np.ndarray:
    if scaling == "l2":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
    if scaling == "standardize":
        centred = vectors - vectors.mean(axis=0)
        std = centred.std(axis=0)
        varying = std > 0
        standardized = np.where(varying, centred / np.where(varying, std, 1.0), 0.0)
        # every part then has total variance 1 (mean squared row norm 1), whatever its width
        return standardized / math.sqrt(max(int(varying.sum()), 1))
    if scaling == "none":
        return vectors
    raise ConfigError(f"unknown scaling {scaling!r}; expected 'l2', 'standardize' or 'none'")


def tokenizer_input(
    text: np.ndarray | None = None,
    collaborative: np.ndarray | None = None,
    scaling: Literal["l2", "standardize", "none"] = "l2",
) -> np.ndarray:
    """The vectors a tokenizer quantizes: text vectors (semantic IDs), collaborative item
    vectors of a trained model (e.g. LightGCN's or SASRec's item embeddings, any [n_items, d]
    array; row i = item index i), or both concatenated.

    Each given part is scaled on its own before concatenating, so neither dominates by scale:
    ``"l2"`` (default) makes every row of every part unit length, so both parts contribute
    the same squared norm per item; ``"standardize"`` centres each dimension, divides it by
    its standard deviation and the part by sqrt(its width) (constant dimensions become 0
    and do not count), so both parts have total variance
    1 however many dimensions each has; ``"none"`` keeps the vectors as they are.
    """
    parts = [
        _check_vectors(vectors, what)
        for vectors, what in ((text, "text vectors"), (collaborative, "collaborative vectors"))
        if vectors is not None
    ]
    if not parts:
        raise ModelError("tokenizer_input needs text vectors, collaborative vectors or both")
    if len(parts) == 2 and len(parts[0]) != len(parts[1]):
        raise ModelError(
            f"text vectors cover {len(parts[0])} items but collaborative vectors "
            f"{len(parts[1])}: both must have one row per item, in item-index order"
        )
    return np.concatenate([_scale(part, scaling) for part in parts], axis=1).astype(np.float32)


def collaborative_vectors(model: Recommender, item_ids: Sequence) -> np.ndarray:
    """A trained model's item vectors (LightGCN's propagated item embeddings, SASRec's or
    MF-BPR's item embeddings, ...) as tokenizer input: row i is ``item_ids[i]``. Every id must
    be one the model was trained on (matched as strings); the model must expose
    ``user_item_vectors``."""
    if not callable(getattr(model, "user_item_vectors", None)):
        raise ModelError(
            f"{model.name} has no item vectors (no user_item_vectors): collaborative codes "
            "need a model such as lightgcn, mf_bpr or sasrec"
        )
    with torch.no_grad():
        _, items = model.user_item_vectors(Query.users([0]))
    row_of = {str(item): row for row, item in enumerate(model.item_ids)}
    rows = [row_of.get(str(item), -1) for item in item_ids]
    if -1 in rows:
        missing = [str(item) for item, row in zip(item_ids, rows, strict=True) if row < 0][:5]
        raise ModelError(
            f"{sum(r < 0 for r in rows)} items have no {model.name} vector (e.g. {missing}): "
            "train the model on the same data set"
        )
    return items.detach().float().cpu().numpy()[np.asarray(rows)]


# --- collisions ------------------------------------------------------------------------------
def collision_rate(raw_codes: np.ndarray) -> float:
    """Fraction of items whose code (all levels of ``raw_codes``) some other item shares."""
    raw_codes = np.asarray(raw_codes)
    _, inverse, counts = np.unique(raw_codes, axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.reshape(-1)] > 1).mean())


def break_collisions(raw_codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Append a last token that tells apart items sharing a code: 0, 1, 2, ... in item order
    within each group (TIGER). Returns the [n, L + 1] codes and the new level's size (the
    largest group; 1 when nothing collides)."""
    raw_codes = np.asarray(raw_codes, dtype=np.int64)
    n_items = len(raw_codes)
    _, inverse, counts = np.unique(raw_codes, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    group_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n_items, dtype=np.int64)
    rank[order] = np.arange(n_items) - group_start[inverse[order]]
    return np.concatenate([raw_codes, rank[:, None]], axis=1), int(counts.max())


# --- quality ---------------------------------------------------------------------------------
def tokenizer_quality(
    codes_before_dedup: np.ndarray,
    level_sizes: Sequence[int],
    inputs: np.ndarray | None = None,
    reconstruction: np.ndarray | None = None,
    reconstruction_by_level: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """How good a tokenization is, before any decoder is trained.

    Per level: the codebook size K, how many codewords some item uses (``usage`` = used / K),
    and the entropy in bits of the level's token distribution next to its maximum log2 K
    (a collapsed codebook has few used codewords and low entropy). Overall: distinct codes,
    the collision rate (fraction of items sharing their code with another item) and the
    largest group before de-duplication. With ``inputs`` and ``reconstruction`` (the decoder's
    output for RQ-VAE, the sum of the chosen centroids for residual k-means): the mean squared
    error per dimension and the same relative to the inputs' variance,
    sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 (0 is perfect, 1 is as bad as the mean);
    ``reconstruction_by_level[l]`` (from the first l + 1 levels) adds that ratio per depth.
    """
    codes = np.asarray(codes_before_dedup, dtype=np.int64)
    if codes.ndim != 2 or codes.shape[1] != len(level_sizes):
        raise ModelError(
            f"codes of shape {codes.shape} do not match {len(level_sizes)} level sizes"
        )
    levels = []
    for level, size in enumerate(level_sizes):
        counts = np.bincount(codes[:, level], minlength=size)
        share = counts[counts > 0] / len(codes)
        levels.append(
            {
                "level": level + 1,
                "codebook_size": int(size),
                "used": int((counts > 0).sum()),
                "usage": float((counts > 0).mean()),
                "entropy_bits": float(-(share * np.log2(share)).sum()),
                "max_entropy_bits": float(math.log2(size)) if size > 0 else 0.0,
            }
        )
    _, group_sizes = np.unique(codes, axis=0, return_counts=True)
    quality: dict[str, Any] = {
        "n_items": len(codes),
        "n_levels": len(level_sizes),
        "levels": levels,
        "distinct_codes": len(group_sizes),
        "collision_rate": collision_rate(codes),
        "max_collision_group": int(group_sizes.max()),
    }
    if inputs is not None and reconstruction is not None:
        inputs = np.asarray(inputs, dtype=np.float64)
        total_variance = float(((inputs - inputs.mean(axis=0)) ** 2).sum())

        def relative(approximation: np.ndarray) -> float:
            error = float(((inputs - np.asarray(approximation, dtype=np.float64)) ** 2).sum())
            return error / total_variance if total_variance > 0 else float("nan")

        quality["reconstruction_mse"] = float(
            ((inputs - np.asarray(reconstruction, dtype=np.float64)) ** 2).mean()
        )
        quality["reconstruction_relative_mse"] = relative(reconstruction)
        if reconstruction_by_level is not None:
            quality["reconstruction_relative_mse_by_level"] = [
                relative(partial) for partial in reconstruction_by_level
            ]
    return quality


def quality_table(qualities: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown tables of :func:`tokenizer_quality` results, keyed by tokenizer name: one row
    per tokenizer (collisions, reconstruction) and one per tokenizer and level (usage)."""

    def number(value: Any, digits: int = 4) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    lines = [
        "| tokenizer | items | distinct codes | collision rate | largest group "
        "| relative MSE | relative MSE by depth |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, quality in qualities.items():
        by_level = quality.get("reconstruction_relative_mse_by_level")
        lines.append(
            f"| {name} | {quality['n_items']} | {quality['distinct_codes']} "
            f"| {quality['collision_rate']:.4f} | {quality['max_collision_group']} "
            f"| {number(quality.get('reconstruction_relative_mse'))} "
            f"| {' / '.join(number(v) for v in by_level) if by_level else '—'} |"
        )
    lines += [
        "",
        "| tokenizer | level | codebook size | used | usage | entropy (bits) | max (bits) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, quality in qualities.items():
        for level in quality["levels"]:
            lines.append(
                f"| {name} | {level['level']} | {level['codebook_size']} | {level['used']} "
                f"| {level['usage']:.3f} | {level['entropy_bits']:.2f} "
                f"| {level['max_entropy_bits']:.2f} |"
            )
    return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class Tokenization:
    """A tokenizer's output: unique codes (with the collision-breaking level), the codes
    before de-duplication, and their quality (:func:`tokenizer_quality`)."""

    codes: ItemCodes
    raw_codes: np.ndarray
    quality: dict[str, Any] = field(default_factory=dict)


def _deduplicated(
    raw_codes: np.ndarray, level_sizes: Sequence[int], quality: dict, source: dict
) -> Tokenization:
    codes, extra_size = break_collisions(raw_codes)
    source = {**source, "collision_rate": quality["collision_rate"], "dedup_level_size": extra_size}
    return Tokenization(
        codes=ItemCodes(codes, (*level_sizes, extra_size), source),
        raw_codes=np.asarray(raw_codes, dtype=np.int64),
        quality=quality,
    )


# --- k-means ---------------------------------------------------------------------------------
def _squared_distances(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    return (
        points.pow(2).sum(1, keepdim=True)
        - 2 * points @ centroids.T
        + centroids.pow(2).sum(1)[None, :]
    ).clamp_min_(0)


def nearest(points: torch.Tensor, centroids: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """Index of each point's nearest centroid (L2), in chunks of rows to bound memory."""
    return torch.cat(
        [
            _squared_distances(points[start : start + chunk], centroids).argmin(1)
            for start in range(0, len(points), chunk)
        ]
    )


def kmeans(
    points: torch.Tensor, n_clusters: int, iterations: int, generator: torch.Generator
) -> torch.Tensor:
    """Centroids [n_clusters, dim]: k-means++ seeding, then at most ``iterations`` Lloyd steps.

    An emptied cluster takes the point farthest from its centroid (distinct points for
    distinct empty clusters). With fewer distinct points than clusters, the extra centroids
    repeat points (they then stay unused).
    """
    points = points.detach().float()
    n_points = len(points)
    # k-means++: each next centroid drawn with probability proportional to D(x)^2
    first = int(torch.randint(n_points, (1,), generator=generator))
    chosen = [first]
    closest = _squared_distances(points, points[first : first + 1]).squeeze(1)
    for _ in range(1, n_clusters):
        total = closest.sum()
        if total > 0:
            weights = (closest / total).cpu()
            index = int(torch.multinomial(weights, 1, generator=generator))
        else:
            index = int(torch.randint(n_points, (1,), generator=generator))
        chosen.append(index)
        closest = torch.minimum(
            closest, _squared_distances(points, points[index : index + 1]).squeeze(1)
        )
    centroids = points[chosen].clone()
    assignment = None
    for _ in range(iterations):
        new_assignment = nearest(points, centroids)
        if assignment is not None and torch.equal(new_assignment, assignment):
            break
        assignment = new_assignment
        sums = torch.zeros_like(centroids).index_add_(0, assignment, points)
        counts = torch.bincount(assignment, minlength=n_clusters)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None].float()
        empty = (~filled).nonzero().squeeze(1)
        if len(empty):
            error = (points - centroids[assignment]).pow(2).sum(1)
            farthest = torch.argsort(error, descending=True, stable=True)[: len(empty)]
            centroids[empty[: len(farthest)]] = points[farthest]
    return centroids


# --- residual k-means ------------------------------------------------------------------------
class ResidualKMeansConfig(ModelConfig):
    """Residual k-means: ``n_levels`` codebooks of ``codebook_size`` centroids."""

    n_levels: int = Field(3, ge=1)
    codebook_size: int = Field(256, ge=2)
    #: Lloyd iterations per level (fewer when assignments stop changing)
    iterations: int = Field(50, ge=1)
    seed: int = 0


def _config(config_class: type[ModelConfig], config: ModelConfig | None, params: dict):
    if config is not None and params:
        raise ConfigError("pass either a config object or keyword hyperparameters")
    try:
        return config if config is not None else config_class(**params)
    except ValidationError as error:
        raise ConfigError(f"invalid tokenizer hyperparameters:\n{error}") from error


class ResidualKMeansTokenizer:
    """k-means on the vectors, then on the residuals, for ``n_levels`` levels."""

    name = "rkmeans"
    Config = ResidualKMeansConfig

    def __init__(
        self, config: ResidualKMeansConfig | None = None, device: str | None = None, **params
    ) -> None:
        self.config: ResidualKMeansConfig = _config(self.Config, config, params)
        self.device = torch.device(device) if device is not None else default_device()
        self.codebooks: torch.Tensor | None = None  # [n_levels, codebook_size, dim]

    def fit(self, vectors: np.ndarray) -> Self:
        config = self.config
        points = torch.from_numpy(_check_vectors(vectors, "tokenizer input")).to(self.device)
        generator = torch.Generator().manual_seed(config.seed)
        books = []
        residual = points
        with progress("Residual k-means", total=config.n_levels) as advance:
            for _ in range(config.n_levels):
                centroids = kmeans(residual, config.codebook_size, config.iterations, generator)
                residual = residual - centroids[nearest(residual, centroids)]
                books.append(centroids)
                advance()
        self.codebooks = torch.stack(books)
        return self

    def quantize(self, vectors: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Codes [n, n_levels] and the reconstruction from the first 1, 2, ... levels."""
        if self.codebooks is None:
            raise ModelError("rkmeans: call fit() first")
        residual = torch.from_numpy(_check_vectors(vectors, "tokenizer input")).to(self.device)
        approximation = torch.zeros_like(residual)
        codes, partial = [], []
        for centroids in self.codebooks:
            index = nearest(residual, centroids)
            approximation = approximation + centroids[index]
            residual = residual - centroids[index]
            codes.append(index)
            partial.append(approximation.cpu().numpy())
        return torch.stack(codes, 1).cpu().numpy(), partial

    def tokenize(self, vectors: np.ndarray, source: dict | None = None) -> Tokenization:
        """Unique codes of ``vectors`` (the collision-breaking level appended) and quality."""
        raw, partial = self.quantize(vectors)
        level_sizes = (self.config.codebook_size,) * self.config.n_levels
        quality = tokenizer_quality(raw, level_sizes, vectors, partial[-1], partial)
        meta = {"tokenizer": self.name, "config": self.config.model_dump(), **(source or {})}
        return _deduplicated(raw, level_sizes, quality, meta)


# --- RQ-VAE ----------------------------------------------------------------------------------
class RQVAEConfig(ModelConfig):
    """RQ-VAE of TIGER (Rajput et al., NeurIPS 2023): encoder 512-256-128 -> latent 32 (ReLU),
    3 levels of 256 codewords, beta 0.25, batch 1024, k-means codebook init.

    Deviations: TIGER trains with Adagrad (learning rate 0.4) for 20k epochs; semrec uses Adam
    with learning rate 1e-3 (as LC-Rec's and LETTER's public RQ-VAEs do) for 50 epochs, plus
    dead-code restarts, so that ~12k items tokenize in minutes on a CPU (and the network sees
    the input centred and globally rescaled: :meth:`RQVAETokenizer.prepare`).
    """

    hidden_sizes: tuple[int, ...] = (512, 256, 128)
    latent_size: int = Field(32, ge=1)
    n_levels: int = Field(3, ge=1)
    codebook_size: int = Field(256, ge=2)
    #: beta, the weight of the commitment term ||r - sg[e]||^2
    commitment_weight: float = Field(0.25, ge=0)
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(1024, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    #: codebooks start as k-means centroids of each level's residuals (else random residuals)
    kmeans_init: bool = True
    kmeans_iterations: int = Field(50, ge=1)
    #: after each epoch but the last, reset codewords no item chose to random residuals
    dead_code_restart: bool = True
    seed: int = 0


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for position, (width_in, width_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(width_in, width_out))
        if position < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@dataclass
class Quantized:
    """Residual quantization of a batch of latents."""

    #: straight-through quantized latents: forward value sum_l e_{l,c_l}, gradient to z
    latent: torch.Tensor
    codes: torch.Tensor  # [batch, n_levels]
    #: sum_l ||sg[r_l] - e||^2 and sum_l ||r_l - sg[e]||^2, each averaged over batch and dims
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    #: sum of the first l + 1 chosen codewords, for l = 0 .. n_levels - 1 (no gradient)
    partial_sums: list[torch.Tensor]


class RQVAE(nn.Module):
    """Encoder MLP, residual quantizer, decoder MLP (the encoder's mirror). Tensors in and out."""

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int],
        latent_size: int,
        n_levels: int,
        codebook_size: int,
    ) -> None:
        super().__init__()
        sizes = [input_size, *hidden_sizes, latent_size]
        self.encoder = _mlp(sizes)
        self.decoder = _mlp(sizes[::-1])
        self.codebooks = nn.Parameter(torch.randn(n_levels, codebook_size, latent_size) * 0.1)

    def quantize(self, latent: torch.Tensor) -> Quantized:
        residual = latent
        quantized = torch.zeros_like(latent)
        codebook_loss = commitment_loss = latent.new_zeros(())
        codes, partial_sums = [], []
        for codebook in self.codebooks:
            index = nearest(residual.detach(), codebook.detach())
            chosen = codebook[index]
            codebook_loss = codebook_loss + (residual.detach() - chosen).pow(2).mean()
            commitment_loss = commitment_loss + (residual - chosen.detach()).pow(2).mean()
            quantized = quantized + chosen.detach()
            residual = residual - chosen.detach()
            codes.append(index)
            partial_sums.append(quantized)
        return Quantized(
            latent=latent + (quantized - latent).detach(),
            codes=torch.stack(codes, 1),
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
            partial_sums=partial_sums,
        )

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        quantized = self.quantize(self.encoder(inputs))
        return self.decoder(quantized.latent), quantized


class RQVAETokenizer:
    """Trains an :class:`RQVAE` on item vectors and turns them into codes (see module doc)."""

    name = "rqvae"
    Config = RQVAEConfig

    def __init__(self, config: RQVAEConfig | None = None, device: str | None = None, **params):
        self.config: RQVAEConfig = _config(self.Config, config, params)
        self.device = torch.device(device) if device is not None else default_device()
        self.model: RQVAE | None = None
        #: the network sees (x - input_mean) / input_scale (see :meth:`prepare`)
        self.input_mean: torch.Tensor | None = None
        self.input_scale: torch.Tensor | None = None
        #: per epoch: mean losses, codeword usage per level, dead codewords restarted per level
        self.history: list[dict[str, Any]] = []

    def fit(self, vectors: np.ndarray) -> Self:
        config = self.config
        raw = torch.from_numpy(_check_vectors(vectors, "tokenizer input")).to(self.device)
        self.input_mean = raw.mean(0)
        self.input_scale = (raw - self.input_mean).pow(2).mean().sqrt().clamp_min(1e-12)
        inputs = self.prepare(vectors)
        generator = torch.Generator().manual_seed(config.seed)
        with torch.random.fork_rng(devices=[]):  # seeded weights, global RNG left untouched
            torch.manual_seed(config.seed)
            self.model = RQVAE(
                inputs.shape[1],
                config.hidden_sizes,
                config.latent_size,
                config.n_levels,
                config.codebook_size,
            ).to(self.device)
        self.init_codebooks(inputs, generator)
        optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.history = []
        with progress("Training RQ-VAE", total=config.epochs) as advance:
            for epoch in range(1, config.epochs + 1):
                record = self._train_epoch(inputs, optimizer, generator)
                last = epoch == config.epochs
                usage, restarted = self.restart_dead_codes(
                    inputs, generator, restart=config.dead_code_restart and not last
                )
                record.update(epoch=epoch, usage=usage, restarted=restarted)
                self.history.append(record)
                advance(loss=record["loss"])
                if epoch % 50 == 0 or last:
                    log.info(
                        "rqvae epoch %d: loss %.5f, usage %s, restarted %s",
                        epoch,
                        record["loss"],
                        [round(u, 3) for u in usage],
                        restarted,
                    )
        return self

    def prepare(self, vectors: np.ndarray) -> torch.Tensor:
        """What the network sees: the vectors centred and divided by one global scale (their
        root mean square deviation), so every element is O(1) whatever the input's scale.
        Unit-length text vectors have elements of about 1/sqrt(dim): unscaled, the
        reconstruction loss is so small next to the quantization terms that the encoder
        shrinks the latents and the decoder learns to output the mean. One scale for all
        dimensions keeps the input's geometry (L2 distances up to a constant factor)."""
        if self.input_mean is None:
            raise ModelError("rqvae: call fit() first")
        vectors = torch.from_numpy(_check_vectors(vectors, "tokenizer input")).to(self.device)
        return (vectors - self.input_mean) / self.input_scale

    def _train_epoch(
        self, inputs: torch.Tensor, optimizer: torch.optim.Optimizer, generator: torch.Generator
    ) -> dict[str, float]:
        config = self.config
        self.model.train()
        order = torch.randperm(len(inputs), generator=generator).to(self.device)
        totals = {"loss": 0.0, "reconstruction": 0.0, "codebook": 0.0, "commitment": 0.0}
        for start in range(0, len(inputs), config.batch_size):
            batch = inputs[order[start : start + config.batch_size]]
            reconstruction, quantized = self.model(batch)
            reconstruction_loss = (reconstruction - batch).pow(2).mean()
            loss = (
                reconstruction_loss
                + quantized.codebook_loss
                + config.commitment_weight * quantized.commitment_loss
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            weight = len(batch) / len(inputs)
            totals["loss"] += float(loss.detach()) * weight
            totals["reconstruction"] += float(reconstruction_loss.detach()) * weight
            totals["codebook"] += float(quantized.codebook_loss.detach()) * weight
            totals["commitment"] += float(quantized.commitment_loss.detach()) * weight
        return totals

    @torch.no_grad()
    def init_codebooks(self, inputs: torch.Tensor, generator: torch.Generator) -> None:
        """Each level's codebook := k-means centroids of that level's residuals of all items
        under the untrained encoder (or, without ``kmeans_init``, random residuals)."""
        config = self.config
        residual = self.model.encoder(inputs)
        for level in range(config.n_levels):
            if config.kmeans_init:
                centroids = kmeans(
                    residual, config.codebook_size, config.kmeans_iterations, generator
                )
            else:
                centroids = residual[_draw(len(residual), config.codebook_size, generator)]
            self.model.codebooks[level] = centroids
            residual = residual - centroids[nearest(residual, centroids)]

    @torch.no_grad()
    def restart_dead_codes(
        self, inputs: torch.Tensor, generator: torch.Generator, restart: bool = True
    ) -> tuple[list[float], list[int]]:
        """Usage of each level's codebook over all items; with ``restart``, each codeword no
        item chose is reset to the current residual of a randomly drawn item (level by level,
        so a later level sees the residuals left by the repaired earlier one).

        Returns (fraction of codewords used per level, before restarting; restarts per level).
        """
        self.model.eval()
        residual = self.model.encoder(inputs)
        usage, restarted = [], []
        for codebook in self.model.codebooks:
            index = nearest(residual, codebook)
            dead = (torch.bincount(index, minlength=len(codebook)) == 0).nonzero().squeeze(1)
            usage.append(1.0 - len(dead) / len(codebook))
            if restart and len(dead):
                codebook[dead] = residual[_draw(len(residual), len(dead), generator)]
                index = nearest(residual, codebook)
            restarted.append(len(dead) if restart else 0)
            residual = residual - codebook[index]
        return usage, restarted

    @torch.no_grad()
    def quantize(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Codes [n, n_levels], the decoder's reconstruction, and the decoder's output from
        the first 1, 2, ... levels' codewords."""
        if self.model is None:
            raise ModelError("rqvae: call fit() first")
        self.model.eval()
        reconstruction, quantized = self.model(self.prepare(vectors))

        def original_space(outputs: torch.Tensor) -> np.ndarray:
            return (outputs * self.input_scale + self.input_mean).cpu().numpy()

        partial = [original_space(self.model.decoder(s)) for s in quantized.partial_sums]
        return quantized.codes.cpu().numpy(), original_space(reconstruction), partial

    def tokenize(self, vectors: np.ndarray, source: dict | None = None) -> Tokenization:
        """Unique codes of ``vectors`` (the collision-breaking level appended) and quality."""
        raw, reconstruction, partial = self.quantize(vectors)
        level_sizes = (self.config.codebook_size,) * self.config.n_levels
        quality = tokenizer_quality(raw, level_sizes, vectors, reconstruction, partial)
        meta = {"tokenizer": self.name, "config": self.config.model_dump(), **(source or {})}
        return _deduplicated(raw, level_sizes, quality, meta)


def _draw(n_points: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random point indices, distinct while there are enough points."""
    if count <= n_points:
        return torch.randperm(n_points, generator=generator)[:count]
    return torch.randint(n_points, (count,), generator=generator)


# --- trivial indexings -----------------------------------------------------------------------
def _digits(numbers: np.ndarray, base: int, n_levels: int | None) -> np.ndarray:
    needed = 1
    while base**needed <= numbers.max():
        needed += 1
    n_levels = needed if n_levels is None else n_levels
    if base**n_levels <= numbers.max():
        raise ConfigError(f"{n_levels} levels of {base} tokens cannot number {len(numbers)} items")
    powers = base ** np.arange(n_levels - 1, -1, -1, dtype=np.int64)
    return (numbers[:, None] // powers[None, :]) % base


def sequential_codes(
    n_items: int,
    codebook_size: int = 256,
    n_levels: int | None = None,
    order: np.ndarray | None = None,
) -> ItemCodes:
    """Sequential indexing: item i's code is the base-``codebook_size`` digits of its
    position, most significant first (``n_levels`` default: as few as needed). ``order``
    (item indices, e.g. in order of first appearance in the users' sequences, as in Hua et
    al.'s SID) sets the positions; default: the item index itself."""
    if n_items < 1:
        raise ModelError("sequential_codes needs at least one item")
    position = np.arange(n_items, dtype=np.int64)
    if order is not None:
        order = np.asarray(order, dtype=np.int64)
        if not np.array_equal(np.sort(order), position):
            raise ModelError(f"order must be a permutation of the {n_items} item indices")
        position[order] = np.arange(n_items)
    digits = _digits(position, codebook_size, n_levels)
    return ItemCodes(
        digits,
        (codebook_size,) * digits.shape[1],
        {"tokenizer": "sequential", "codebook_size": codebook_size},
    )


def random_codes(
    n_items: int, codebook_size: int = 256, n_levels: int | None = None, seed: int = 0
) -> ItemCodes:
    """Random indexing: the base-``codebook_size`` digits of a seeded random permutation of
    0 .. n_items - 1 (unique; no relation between the codes of similar items)."""
    if n_items < 1:
        raise ModelError("random_codes needs at least one item")
    permutation = np.random.default_rng(seed).permutation(n_items).astype(np.int64)
    digits = _digits(permutation, codebook_size, n_levels)
    return ItemCodes(
        digits,
        (codebook_size,) * digits.shape[1],
        {"tokenizer": "random", "codebook_size": codebook_size, "seed": seed},
    )


TOKENIZERS = {"rqvae": RQVAETokenizer, "rkmeans": ResidualKMeansTokenizer}


def tokenize(
    vectors: np.ndarray,
    method: str = "rqvae",
    source: dict | None = None,
    device: str | None = None,
    **params: Any,
) -> Tokenization:
    """Tokenize item vectors with ``method`` (``rqvae``, ``rkmeans``, ``random`` or
    ``sequential``; ``params`` are its hyperparameters). ``source`` is recorded in the codes'
    metadata (e.g. ``{"input": "text:all-MiniLM-L6-v2"}``)."""
    if method in TOKENIZERS:
        tokenizer = TOKENIZERS[method](device=device, **params)
        return tokenizer.fit(vectors).tokenize(vectors, source)
    if method in ("random", "sequential"):
        n_items = len(_check_vectors(vectors, "tokenizer input"))
        maker = random_codes if method == "random" else sequential_codes
        try:
            codes = maker(n_items, **params)
        except TypeError as error:
            raise ConfigError(f"{method} indexing: {error}") from None
        codes = ItemCodes(codes.codes, codes.level_sizes, {**codes.source, **(source or {})})
        quality = tokenizer_quality(codes.codes, codes.level_sizes)
        return Tokenization(codes, codes.codes, quality)
    raise ConfigError(
        f"unknown tokenizer {method!r}; known: {[*TOKENIZERS, 'random', 'sequential']}"
    )


# --- persistence -----------------------------------------------------------------------------
def codes_to_tensors(codes: ItemCodes, prefix: str = "item_codes") -> dict[str, np.ndarray]:
    """The arrays that store ``codes`` inside a model's weights file (source goes in the
    manifest): ``<prefix>.codes`` [n_items, n_levels] and ``<prefix>.level_sizes``."""
    return {
        f"{prefix}.codes": np.ascontiguousarray(codes.codes, dtype=np.int64),
        f"{prefix}.level_sizes": np.asarray(codes.level_sizes, dtype=np.int64),
    }


def codes_from_tensors(
    tensors: Mapping[str, Any], prefix: str = "item_codes", source: dict | None = None
) -> ItemCodes:
    """Inverse of :func:`codes_to_tensors` (numpy arrays or torch tensors)."""
    codes = np.asarray(tensors[f"{prefix}.codes"], dtype=np.int64)
    level_sizes = tuple(int(s) for s in np.asarray(tensors[f"{prefix}.level_sizes"]))
    return ItemCodes(codes, level_sizes, dict(source or {}))


def save_codes(path: Path, codes: ItemCodes, item_ids: Sequence | None = None) -> None:
    """Write codes to a safetensors file atomically: tensor ``codes``, metadata with the
    level sizes, the source and (optionally) the item id of each row."""
    path = Path(path)
    if item_ids is not None and len(item_ids) != codes.n_items:
        raise ModelError(f"{path}: {len(item_ids)} item ids for {codes.n_items} codes")
    metadata = {
        "format": CODES_FORMAT,
        "format_version": str(CODES_FORMAT_VERSION),
        "level_sizes": json.dumps(list(codes.level_sizes)),
        "source": json.dumps(codes.source, default=str),
    }
    if item_ids is not None:
        metadata["item_ids"] = json.dumps([str(item) for item in item_ids])
    data = save_safetensors({"codes": np.ascontiguousarray(codes.codes)}, metadata=metadata)
    write_bytes_atomic(path, data)


def load_codes(path: Path, item_ids: Sequence | None = None) -> ItemCodes:
    """Read codes written by :func:`save_codes`; with ``item_ids``, check the file's rows
    are those items in that order. Errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: item codes file not found")
    try:
        with safe_open(path, framework="np") as stored:
            metadata = stored.metadata() or {}
            tensors = {name: stored.get_tensor(name) for name in stored.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelError(f"{path}: not a readable safetensors file ({error})") from None
    if metadata.get("format") != CODES_FORMAT or "codes" not in tensors:
        raise ModelError(f"{path}: not a semrec item codes file")
    if metadata.get("format_version") != str(CODES_FORMAT_VERSION):
        raise ModelError(
            f"{path}: format_version {metadata.get('format_version')!r}, "
            f"this semrec reads {CODES_FORMAT_VERSION}"
        )
    try:
        level_sizes = tuple(int(s) for s in json.loads(metadata["level_sizes"]))
        source = json.loads(metadata.get("source", "{}"))
        stored_ids = json.loads(metadata["item_ids"]) if "item_ids" in metadata else None
    except (KeyError, ValueError, TypeError) as error:
        raise ModelError(f"{path}: malformed metadata ({error})") from None
    try:
        codes = ItemCodes(tensors["codes"], level_sizes, source)
    except ModelError as error:
        raise ModelError(f"{path}: {error}") from None
    if item_ids is not None:
        expected = [str(item) for item in item_ids]
        if stored_ids is None:
            if len(expected) != codes.n_items:
                raise ModelError(
                    f"{path}: holds codes of {codes.n_items} items, expected {len(expected)}"
                )
        elif stored_ids != expected:
            raise ModelError(
                f"{path}: its codes belong to other items (or another order) than the "
                f"{len(expected)} given item ids"
            )
    return codes


TOKEN = re.compile(r"<([a-z])_(\d+)>")


def load_given_codes(
    path: Path,
    item_ids: Sequence,
    key_offset: int = 1,
    level_sizes: Sequence[int] | None = None,
    deduplicate: bool = True,
) -> ItemCodes:
    """Codes learned elsewhere, in LETTER's ``<Name>.index.json`` format (optionally .gz):
    ``{"0": ["<a_183>", "<b_70>", "<c_232>", "<d_6>"], ...}``, the letter naming the level
    (a, b, c, ...) and the number the token. Key k is the item with id ``k + key_offset``
    (LETTER's keys are 0-based, the P5 item ids of ``amazon-beauty-p5`` 1-based: offset 1).

    Rows follow ``item_ids`` (the data set's item ids, e.g. ``interactions.item_ids``); every
    item needs a code. ``level_sizes`` default: largest token + 1 per level. Codes that
    collide (LETTER's Beauty file has 13 items whose 4-token code another item shares) get
    the collision-breaking last level, unless ``deduplicate`` is False, which makes them an
    error; unique codes are kept as they are.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as stream:
            index = json.load(stream)
    except FileNotFoundError:
        raise DataError(f"{path}: item code file not found") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(index, dict) or not index:
        raise DataError(f'{path}: expected a JSON object {{"0": ["<a_1>", "<b_2>", ...], ...}}')
    by_id: dict[str, list[int]] = {}
    n_levels = None
    for key, tokens in index.items():
        if not key.isdigit() or not isinstance(tokens, list):
            raise DataError(f"{path}: entry {key!r}: expected an integer key and a token list")
        parsed = [TOKEN.fullmatch(token) if isinstance(token, str) else None for token in tokens]
        if any(match is None for match in parsed) or not parsed:
            raise DataError(f"{path}: entry {key!r}: tokens must look like '<a_12>', got {tokens}")
        letters = [match.group(1) for match in parsed]
        if letters != [chr(ord("a") + level) for level in range(len(letters))]:
            raise DataError(f"{path}: entry {key!r}: levels must be a, b, c, ... in order")
        if n_levels is not None and len(parsed) != n_levels:
            raise DataError(
                f"{path}: entry {key!r} has {len(parsed)} tokens, earlier entries {n_levels}"
            )
        n_levels = len(parsed)
        by_id[str(int(key) + key_offset)] = [int(match.group(2)) for match in parsed]
    ids = [str(item) for item in item_ids]
    missing = [item for item in ids if item not in by_id]
    if missing:
        raise DataError(
            f"{path}: no code for {len(missing)} of {len(ids)} items, e.g. item ids "
            f"{missing[:5]} (key = item id - {key_offset}); is the file for this data set?"
        )
    raw = np.asarray([by_id[item] for item in ids], dtype=np.int64).reshape(len(ids), n_levels)
    if level_sizes is None:
        level_sizes = tuple(int(size) for size in raw.max(axis=0) + 1)
    elif len(level_sizes) != n_levels or (raw >= np.asarray(level_sizes)).any():
        raise DataError(f"{path}: tokens do not fit the level sizes {tuple(level_sizes)}")
    source = {"tokenizer": "given", "path": str(path), "n_given_levels": n_levels}
    rate = collision_rate(raw)
    if rate == 0:
        return ItemCodes(raw, tuple(level_sizes), source)
    if not deduplicate:
        raise DataError(
            f"{path}: {rate:.2%} of the items share their code with another item "
            "(pass deduplicate=True to append a collision-breaking level)"
        )
    codes, extra_size = break_collisions(raw)
    source.update(collision_rate=rate, dedup_level_size=extra_size)
    return ItemCodes(codes, (*level_sizes, extra_size), source)
