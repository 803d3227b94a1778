"""The model protocol every recommender follows, its registry, and the saved-model format.

A saved model is a directory with ``manifest.json`` (model name, semrec version, config,
data fingerprint, id vocabularies) and ``weights.safetensors`` (tensors only: loading a model
never executes code). Both are written into a temporary directory that is renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import semrec
from semrec.data import Interactions, ItemCatalog
from semrec.errors import ConfigError, ModelError, UnknownUserError

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
FORMAT_VERSION = 1


class ModelConfig(BaseModel):
    """Base of every model's hyperparameters: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, eq=False)
class TrainData:
    """What ``fit`` receives: training interactions, optionally item text and validation data.

    ``monitor`` (set by the experiment layer, which may import evaluation) returns metrics of
    the model being trained; iterative models call it every ``eval_every`` epochs.
    """

    interactions: Interactions
    catalog: ItemCatalog | None = None
    valid: Interactions | None = None
    monitor: Callable[[], dict[str, float]] | None = None
    #: where iterative models keep checkpoints and history.jsonl (resumed when present)
    work_dir: Path | None = None
    #: item vectors [n_items, dim] (row i = item index i), e.g. encoded item text
    item_embeddings: np.ndarray | None = None

    def require_item_embeddings(self, model: str) -> np.ndarray:
        """The item vectors, checked against the item count; a clear error when absent."""
        vectors = self.item_embeddings
        if vectors is None:
            raise ModelError(
                f"{model} needs item text embeddings: add an `encoder:` section to the "
                "experiment config (or pass TrainData(item_embeddings=...))"
            )
        n_items = self.interactions.n_items
        if vectors.ndim != 2 or len(vectors) != n_items:
            raise ModelError(
                f"{model}: item embeddings have shape {vectors.shape}, expected "
                f"[{n_items} items, dim]"
            )
        if not np.isfinite(vectors).all():
            raise ModelError(f"{model}: item embeddings hold NaN or infinite values")
        return np.asarray(vectors, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Query:
    """A batch of questions: known users by index, and/or item histories (for unseen users).

    ``history[b]`` holds the item indices of query ``b`` in time order. When both are given,
    models that use the history take it and user-based models take the user.
    """

    user_index: np.ndarray | None = None
    history: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.user_index is None and self.history is None:
            raise ModelError("a Query needs user_index or history")
        if (
            self.user_index is not None
            and self.history is not None
            and len(self.user_index) != len(self.history)
        ):
            raise ModelError("user_index and history must have the same length")

    def __len__(self) -> int:
        return len(self.user_index) if self.user_index is not None else len(self.history)

    @classmethod
    def users(cls, user_index: np.ndarray | list[int]) -> Query:
        return cls(user_index=np.asarray(user_index, dtype=np.int64))

    @classmethod
    def histories(cls, history: list[np.ndarray | list[int]]) -> Query:
        return cls(history=[np.asarray(h, dtype=np.int64) for h in history])


@dataclass(frozen=True, eq=False)
class TopK:
    """Ranked recommendations: ``item_index[b, r]`` is query b's item at rank r (best first)."""

    item_index: torch.Tensor
    scores: torch.Tensor


def top_k(scores: torch.Tensor, k: int) -> TopK:
    """Top-k per row, best first; equal scores are ordered by lower item index.

    ``torch.topk`` leaves the order of ties unspecified, which would make metrics depend on
    the device. When no two of the best k + 1 scores of any row are equal (the usual case
    for real-valued scores), its sorted answer is already the answer. Otherwise rows whose
    k-th score is tied with an item outside the top k are re-ranked with a stable full sort,
    and ties inside the top k are ordered by item index.
    """
    k = min(k, scores.shape[1])
    # the (k+1)-th best tells whether a tie crosses the boundary
    values, indices = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)
    if not (values[:, 1:] == values[:, :-1]).any():
        return TopK(item_index=indices[:, :k], scores=values[:, :k])
    if k < scores.shape[1]:
        crosses_boundary = values[:, k] == values[:, k - 1]
        values, indices = values[:, :k], indices[:, :k]
        if crosses_boundary.any():
            rows = crosses_boundary.nonzero().squeeze(1)
            full_values, full_indices = torch.sort(
                scores[rows], dim=1, descending=True, stable=True
            )
            values[rows], indices[rows] = full_values[:, :k], full_indices[:, :k]
    by_index = torch.argsort(indices, dim=1)
    indices, values = indices.gather(1, by_index), values.gather(1, by_index)
    by_score = torch.sort(values, dim=1, descending=True, stable=True).indices
    return TopK(item_index=indices.gather(1, by_score), scores=values.gather(1, by_score))


def csr_to_tensors(matrix: sp.csr_matrix, prefix: str) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.indptr": torch.from_numpy(matrix.indptr.astype(np.int64)),
        f"{prefix}.indices": torch.from_numpy(matrix.indices.astype(np.int64)),
        f"{prefix}.data": torch.from_numpy(matrix.data.astype(np.float32)),
    }


def csr_from_tensors(
    tensors: dict[str, torch.Tensor], prefix: str, shape: tuple[int, int]
) -> sp.csr_matrix:
    return sp.csr_matrix(
        (
            tensors[f"{prefix}.data"].numpy(),
            tensors[f"{prefix}.indices"].numpy(),
            tensors[f"{prefix}.indptr"].numpy(),
        ),
        shape=shape,
    )


def exclude_cells_(scores: torch.Tensor, matrix: sp.spmatrix) -> torch.Tensor:
    """Set ``scores`` to -inf, in place, at the nonzero cells of ``matrix`` (same shape)."""
    if sp.isspmatrix_csr(matrix):  # rows from indptr: no COO copy (a third of a served request)
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        cols = matrix.indices
    else:
        coo = matrix.tocoo()
        rows, cols = coo.row, coo.col
    device = scores.device
    scores[torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)] = -torch.inf
    return scores


def bool_mask(matrix: sp.spmatrix, device: torch.device) -> torch.Tensor:
    """Dense bool tensor of a sparse matrix's nonzero pattern."""
    coo = matrix.tocoo()
    mask = torch.zeros(coo.shape, dtype=torch.bool, device=device)
    mask[torch.from_numpy(coo.row).to(device), torch.from_numpy(coo.col).to(device)] = True
    return mask


MODEL_REGISTRY: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator adding a model to the registry under ``cls.name``."""
    if cls.name in MODEL_REGISTRY:
        raise ValueError(f"model name {cls.name!r} registered twice")
    MODEL_REGISTRY[cls.name] = cls
    return cls


def model_class(name: str) -> type[Recommender]:
    try:
        return MODEL_REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; known models: {sorted(MODEL_REGISTRY)}"
        ) from None


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Recommender(ABC):
    """Base class of every model. Subclasses set ``name`` and ``Config`` and implement
    ``_fit``, ``score``, ``_state`` and ``_load_state``.

    After ``fit`` the model knows the training vocabularies and each user's training items,
    which ``recommend`` excludes; both travel with the saved model.
    """

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]]
    #: True when ``score`` can answer a Query that has only item histories.
    accepts_history: ClassVar[bool] = False
    #: False for models that generate ranked lists (beam search) instead of scoring every
    #: item: evaluation then ranks by ``recommend``, which must exclude the query's history.
    scores_all_items: ClassVar[bool] = True
    #: True when ``fit`` needs ``TrainData.item_embeddings`` (item text vectors).
    needs_item_embeddings: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ConfigError("pass either a config object or keyword hyperparameters")
        try:
            self.config = config if config is not None else self.Config(**params)
        except ValidationError as error:
            raise ConfigError(f"{self.name}: invalid hyperparameters:\n{error}") from error
        self.device = default_device()
        self.user_ids: np.ndarray | None = None
        self.item_ids: np.ndarray | None = None
        self.seen: sp.csr_matrix | None = None
        self.data_fingerprint = ""

    # --- protocol ------------------------------------------------------------------------
    def fit(self, data: TrainData) -> Self:
        x = data.interactions
        if len(x) == 0:
            raise ModelError(f"{self.name}: cannot fit on zero interactions")
        self.user_ids, self.item_ids = x.user_ids, x.item_ids
        self.seen = x.user_items
        self.data_fingerprint = x.fingerprint()
        self._fit(data)
        return self

    @abstractmethod
    def _fit(self, data: TrainData) -> None: ...

    @abstractmethod
    def score(self, query: Query) -> torch.Tensor:
        """Scores [len(query), n_items], higher is better (on ``self.device``).

        A new tensor each call: callers may modify it in place (masking seen items).
        """

    def recommend(self, query: Query, k: int, exclude_seen: bool = True) -> TopK:
        """Top-k items per query, excluding training items (or the history) when asked."""
        scores = self.score(query)
        if exclude_seen:
            exclude_cells_(scores, self.history_matrix(query))
        return top_k(scores, k)

    # --- helpers for subclasses ----------------------------------------------------------
    @property
    def n_users(self) -> int:
        self._require_fitted()
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        self._require_fitted()
        return len(self.item_ids)

    def _require_fitted(self) -> None:
        if self.item_ids is None:
            raise ModelError(f"{self.name}: call fit() or load() first")

    def check_users(self, query: Query) -> np.ndarray:
        """The query's user indices, after checking every one is known."""
        if query.user_index is None:
            raise ModelError(
                f"{self.name} recommends for known users only: the query needs user_index"
            )
        users = query.user_index
        unknown = (users < 0) | (users >= self.n_users)
        if unknown.any():
            raise UnknownUserError(
                f"{self.name}: unknown user index(es) {users[unknown][:5].tolist()} "
                f"(the model knows {self.n_users} users)"
            )
        return users

    def history_matrix(self, query: Query) -> sp.csr_matrix:
        """Binary [len(query), n_items] matrix of each query's items: the history when given,
        else the known user's training items."""
        if query.history is None:
            return self.seen[self.check_users(query)]
        lengths = [len(h) for h in query.history]
        items = np.concatenate(query.history) if lengths else np.empty(0, dtype=np.int64)
        if len(items) and (items.min() < 0 or items.max() >= self.n_items):
            raise ModelError(
                f"{self.name}: history holds item indices outside 0..{self.n_items - 1}"
            )
        rows = np.repeat(np.arange(len(lengths)), lengths)
        matrix = sp.csr_matrix(
            (np.ones(len(items), dtype=np.float32), (rows, items)),
            shape=(len(lengths), self.n_items),
        )
        matrix.data[:] = 1.0
        return matrix

    # --- persistence ---------------------------------------------------------------------
    @abstractmethod
    def _state(self) -> dict[str, torch.Tensor]:
        """The tensors that, with the config, reproduce the fitted model."""

    @abstractmethod
    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None: ...

    def save(self, path: Path) -> None:
        """Write ``path/`` atomically (temp dir in the same parent, then rename)."""
        self._require_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            name: tensor.detach().to("cpu").contiguous() for name, tensor in self._state().items()
        }
        tensors.update(csr_to_tensors(self.seen, "seen"))
        manifest = {
            "format": "semrec-model",
            "format_version": FORMAT_VERSION,
            "model": self.name,
            "semrec_version": semrec.__version__,
            "config": self.config.model_dump(mode="json"),
            "data_fingerprint": self.data_fingerprint,
            "user_ids": self.user_ids.tolist(),
            "item_ids": self.item_ids.tolist(),
        }
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            save_file(tensors, staging / WEIGHTS)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
            if path.exists():
                retired = path.with_name(f".{path.name}.old")
                shutil.rmtree(retired, ignore_errors=True)
                os.replace(path, retired)
                os.replace(staging, path)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Self:
        """Load a saved model; a missing or corrupt file fails with a message naming it."""
        manifest = read_manifest(path)
        if manifest["model"] != cls.name:
            raise ModelError(
                f"{path / MANIFEST}: holds a {manifest['model']!r} model, not {cls.name!r}"
            )
        try:
            model = cls(cls.Config(**manifest["config"]))
        except (ValidationError, ConfigError) as error:
            raise ModelError(f"{path / MANIFEST}: invalid 'config': {error}") from error
        weights = Path(path) / WEIGHTS
        try:
            # load_file maps the file lazily; copying reads it now, so a truncated file fails
            # here and a served model does not wait on page faults of its weights mid-request
            # (EASE over Gowalla reads 6.7 GB of them in scattered rows)
            tensors = {name: tensor.clone() for name, tensor in load_file(weights).items()}
        except (SafetensorError, OSError) as error:
            raise ModelError(f"{weights}: cannot read model weights ({error})") from error
        model.user_ids = np.asarray(manifest["user_ids"], dtype=object)
        model.item_ids = np.asarray(manifest["item_ids"], dtype=object)
        model.data_fingerprint = manifest["data_fingerprint"]
        try:
            model.seen = csr_from_tensors(tensors, "seen", (model.n_users, model.n_items))
            model._load_state(tensors)
        except (KeyError, ValueError, RuntimeError) as error:
            raise ModelError(f"{weights}: tensors do not match the manifest ({error})") from error
        return model


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and check ``path/manifest.json``."""
    manifest_path = Path(path) / MANIFEST
    if not manifest_path.is_file():
        raise ModelError(f"{manifest_path}: not found; is {path} a saved semrec model directory?")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"{manifest_path}: not valid JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != "semrec-model":
        raise ModelError(f"{manifest_path}: not a semrec model manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{manifest_path}: format_version {manifest.get('format_version')!r}, "
            f"this semrec reads {FORMAT_VERSION}"
        )
    for key, kind in (
        ("model", str),
        ("config", dict),
        ("user_ids", list),
        ("item_ids", list),
        ("data_fingerprint", str),
    ):
        if not isinstance(manifest.get(key), kind):
            raise ModelError(f"{manifest_path}: field {key!r} missing or not a {kind.__name__}")
    return manifest


def load_model(path: Path) -> Recommender:
    """Load any saved model; its class is taken from the manifest."""
    return model_class(read_manifest(path)["model"]).load(path)
