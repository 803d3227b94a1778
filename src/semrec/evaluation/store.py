"""Per-user results of a run on disk: ``per_user.safetensors`` beside ``metrics.json``.

Holds what significance tests, slices and report plots need without reloading data or
model: ``user_index`` (the evaluated users, sorted), ``top_items`` (their ranked lists,
catalogue indices), ``item_popularity`` (training users per item), ``user_train_counts``,
``hits`` (uint8 ``[n_users, max_k]``, 1 where the item at that rank is relevant),
``n_relevant`` and one float64 array per metric, stored as ``metric/<name>`` (e.g.
``metric/recall@20``). No pickle; written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save

from semrec.atomic import write_bytes_atomic
from semrec.evaluation.evaluate import EvaluationResult

PER_USER_FILE = "per_user.safetensors"
_METRIC = "metric/"


@dataclass(frozen=True)
class StoredPerUser:
    user_index: np.ndarray
    top_items: np.ndarray
    item_popularity: np.ndarray
    user_train_counts: np.ndarray
    hits: np.ndarray
    n_relevant: np.ndarray
    metrics: dict[str, np.ndarray]


def save_per_user(path: Path, result: EvaluationResult) -> None:
    n_users = len(result.user_index)
    tensors = {
        "user_index": np.ascontiguousarray(result.user_index, dtype=np.int64),
        "top_items": np.ascontiguousarray(result.top_items, dtype=np.int64),
        "item_popularity": np.ascontiguousarray(
            result.item_popularity if result.item_popularity is not None else np.zeros(0),
            dtype=np.int64,
        ),
        "user_train_counts": np.ascontiguousarray(
            result.user_train_counts if result.user_train_counts is not None else np.zeros(n_users),
            dtype=np.int64,
        ),
        "hits": np.ascontiguousarray(
            result.hits if result.hits is not None else np.zeros((n_users, 0)), dtype=np.uint8
        ),
        "n_relevant": np.ascontiguousarray(
            result.n_relevant if result.n_relevant is not None else np.zeros(n_users),
            dtype=np.int64,
        ),
    }
    for name, values in result.per_user.items():
        tensors[_METRIC + name] = np.ascontiguousarray(values, dtype=np.float64)
    write_bytes_atomic(Path(path), save(tensors))


def load_per_user(path: Path) -> StoredPerUser:
    tensors = load(Path(path).read_bytes())
    return StoredPerUser(
        user_index=tensors["user_index"],
        top_items=tensors["top_items"],
        item_popularity=tensors["item_popularity"],
        user_train_counts=tensors["user_train_counts"],
        hits=tensors["hits"].astype(bool),
        n_relevant=tensors["n_relevant"],
        metrics={
            name[len(_METRIC) :]: values
            for name, values in sorted(tensors.items())
            if name.startswith(_METRIC)
        },
    )
