"""Bring your own item vectors (OpenAI, Qwen, ...): read a file keyed by item id.

Supported files (the format follows the extension):

- ``.npy``: a [n, dim] matrix; the item id of each row, one per line, in the text file
  ``ids_path``, by default the file beside it with ``.ids.txt`` in place of ``.npy``
  (``vectors.npy`` -> ``vectors.ids.txt``).
- ``.safetensors``: a tensor named ``embeddings`` (or the file's only tensor); the row ids in
  the metadata entry ``item_ids`` (a JSON list), else in an ids file as for ``.npy``.
- ``.parquet``: an ``item_id`` column and either an ``embedding`` column of equal-length
  lists or one numeric column per dimension.

Every catalogue item must have exactly one vector. Vectors for items the catalogue lacks are
an error too (they usually mean the file belongs to another data set or version), unless
``allow_extra`` says they are expected, e.g. after filtering the data set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import SafetensorError, safe_open

from semrec.encoders.base import l2_normalize
from semrec.errors import EncoderError

IDS_SUFFIX = ".ids.txt"
TENSOR = "embeddings"

Reader = Callable[[Path, Path | None], tuple[np.ndarray, np.ndarray]]


def _examples(ids: np.ndarray | pd.Index, limit: int = 5) -> str:
    shown = ", ".join(repr(str(item)) for item in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _read_ids(path: Path, ids_path: Path | None) -> np.ndarray:
    ids_path = Path(ids_path) if ids_path is not None else path.with_suffix(IDS_SUFFIX)
    if not ids_path.is_file():
        raise EncoderError(
            f"{path}: the item ids of its rows are read from {ids_path}, which does not exist; "
            "write one item id per line there, in row order (or pass ids_path)"
        )
    lines = ids_path.read_text(encoding="utf-8").strip().splitlines()
    return np.array([line.strip() for line in lines], dtype=object)


def _read_npy(path: Path, ids_path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise EncoderError(f"{path}: not a readable .npy array ({error})") from None
    return _read_ids(path, ids_path), vectors


def _read_safetensors(path: Path, ids_path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        with safe_open(path, framework="np") as stored:
            names = list(stored.keys())
            name = TENSOR if TENSOR in names else names[0] if len(names) == 1 else None
            if name is None:
                raise EncoderError(
                    f"{path}: expected a tensor named {TENSOR!r} (or a single tensor), "
                    f"found {names}"
                )
            vectors = stored.get_tensor(name)
            ids_json = (stored.metadata() or {}).get("item_ids")
    except (OSError, SafetensorError) as error:
        raise EncoderError(f"{path}: not a readable safetensors file ({error})") from None
    if ids_json is None:
        return _read_ids(path, ids_path), vectors
    try:
        ids = json.loads(ids_json)
    except json.JSONDecodeError as error:
        raise EncoderError(f"{path}: metadata item_ids is not a JSON list ({error})") from None
    return np.array([str(item) for item in ids], dtype=object), vectors


def _read_parquet(path: Path, ids_path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise EncoderError(f"{path}: not a readable parquet file ({error})") from None
    if "item_id" not in frame.columns:
        raise EncoderError(f"{path}: no item_id column; columns are {list(frame.columns)}")
    ids = frame["item_id"].astype(str).to_numpy(dtype=object)
    try:
        if "embedding" in frame.columns:
            return ids, np.stack(frame["embedding"].to_numpy()).astype(np.float32)
        return ids, frame.drop(columns="item_id").to_numpy(dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise EncoderError(
            f"{path}: vectors must be an embedding column of equal-length number lists or "
            f"numeric columns, one per dimension ({error})"
        ) from None


READERS: dict[str, Reader] = {
    ".npy": _read_npy,
    ".safetensors": _read_safetensors,
    ".parquet": _read_parquet,
}


def _align(
    path: Path,
    ids: np.ndarray,
    vectors: np.ndarray,
    item_ids: np.ndarray,
    allow_extra: bool,
    dimension: int | None,
) -> np.ndarray:
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise EncoderError(
            f"{path}: expected a 2-D numeric [items, dim] array, got {vectors.dtype} "
            f"with shape {vectors.shape}"
        )
    if len(ids) != len(vectors):
        raise EncoderError(f"{path}: {len(vectors)} vectors but {len(ids)} item ids")
    if dimension is not None and vectors.shape[1] != dimension:
        raise EncoderError(f"{path}: vectors have {vectors.shape[1]} dimensions, need {dimension}")
    index = pd.Index(ids)
    if index.has_duplicates:
        duplicates = index[index.duplicated()].unique()
        raise EncoderError(f"{path}: several vectors for item ids {_examples(duplicates)}")
    wanted = np.asarray(item_ids).astype(str)
    positions = index.get_indexer(wanted)
    missing = wanted[positions < 0]
    if len(missing):
        raise EncoderError(
            f"{path}: no vector for {len(missing)} of {len(wanted)} catalogue items, "
            f"e.g. item ids {_examples(missing)}"
        )
    extra = index[~index.isin(wanted)]
    if len(extra) and not allow_extra:
        raise EncoderError(
            f"{path}: {len(extra)} vectors for items not in the catalogue, e.g. item ids "
            f"{_examples(extra)}; pass allow_extra=True if the data set was filtered"
        )
    aligned = vectors[positions].astype(np.float32)
    broken = ~np.isfinite(aligned).all(axis=1)
    if broken.any():
        raise EncoderError(
            f"{path}: NaN or infinite values in the vectors of {int(broken.sum())} items, "
            f"e.g. item ids {_examples(wanted[broken])}"
        )
    return aligned


def load_embeddings(
    path: str | Path,
    item_ids: np.ndarray,
    ids_path: str | Path | None = None,
    normalize: bool = True,
    allow_extra: bool = False,
    dimension: int | None = None,
) -> np.ndarray:
    """Vectors from a file, as float32 [len(item_ids), dim] with row i for ``item_ids[i]``.

    ``item_ids`` is usually ``catalog.item_ids``; ``dimension``, when given, is checked.
    Normalised like :func:`semrec.encoders.encode_catalog` by default, so brought and
    computed vectors share one scale.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise EncoderError(
            f"{path}: unknown embeddings format {path.suffix!r}; supported: {', '.join(READERS)}"
        )
    if not path.is_file():
        raise EncoderError(f"{path}: no such embeddings file")
    ids, vectors = reader(path, ids_path)
    aligned = _align(path, ids, vectors, item_ids, allow_extra, dimension)
    return l2_normalize(aligned) if normalize else aligned
