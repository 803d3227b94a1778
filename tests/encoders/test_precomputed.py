"""Bringing your own vectors: every format, and a clear error for every mismatch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import save_file

from semrec.encoders import load_embeddings
from semrec.errors import EncoderError

CATALOG_IDS = np.array(["a", "b", "c"], dtype=object)


def write_npy(folder: Path, ids: list[str], vectors: np.ndarray) -> Path:
    path = folder / "vectors.npy"
    np.save(path, vectors)
    (folder / "vectors.ids.txt").write_text("\n".join(ids) + "\n")
    return path


def write_safetensors(folder: Path, ids: list[str], vectors: np.ndarray) -> Path:
    path = folder / "vectors.safetensors"
    save_file({"embeddings": vectors}, path, metadata={"item_ids": json.dumps(ids)})
    return path


def write_parquet(folder: Path, ids: list[str], vectors: np.ndarray) -> Path:
    path = folder / "vectors.parquet"
    pd.DataFrame({"item_id": ids, "embedding": list(vectors)}).to_parquet(path)
    return path


WRITERS = [write_npy, write_safetensors, write_parquet]


def vectors_for(ids: list[str], dimension: int = 4) -> np.ndarray:
    """Row for id x: all values ord(x), so alignment is easy to check."""
    return np.array([[ord(i)] * dimension for i in ids], dtype=np.float32)


@pytest.mark.parametrize("write", WRITERS)
def test_vectors_are_aligned_to_the_catalogue_order(tmp_path, write):
    path = write(tmp_path, ["c", "a", "b"], vectors_for(["c", "a", "b"]))
    raw = load_embeddings(path, CATALOG_IDS, normalize=False)
    np.testing.assert_array_equal(raw, vectors_for(["a", "b", "c"]))
    unit = load_embeddings(path, CATALOG_IDS, dimension=4)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("write", WRITERS)
def test_missing_ids_name_the_file_and_examples(tmp_path, write):
    path = write(tmp_path, ["a"], vectors_for(["a"]))
    with pytest.raises(EncoderError, match=r"vectors\..*no vector for 2 of 3.*'b', 'c'"):
        load_embeddings(path, CATALOG_IDS)


@pytest.mark.parametrize("write", WRITERS)
def test_extra_ids_are_an_error_unless_allowed(tmp_path, write):
    ids = ["a", "b", "c", "x", "y"]
    path = write(tmp_path, ids, vectors_for(ids))
    with pytest.raises(EncoderError, match=r"vectors\..*2 vectors for items not in the catalogue"):
        load_embeddings(path, CATALOG_IDS)
    assert load_embeddings(path, CATALOG_IDS, allow_extra=True).shape == (3, 4)


@pytest.mark.parametrize("write", WRITERS)
def test_wrong_dimensions_and_nan_are_errors(tmp_path, write):
    vectors = vectors_for(["a", "b", "c"])
    vectors[1, 2] = np.nan
    path = write(tmp_path, ["a", "b", "c"], vectors)
    with pytest.raises(EncoderError, match="4 dimensions, need 384"):
        load_embeddings(path, CATALOG_IDS, dimension=384)
    with pytest.raises(EncoderError, match=r"NaN or infinite .* of 1 items.*'b'"):
        load_embeddings(path, CATALOG_IDS)


@pytest.mark.parametrize("write", WRITERS)
def test_duplicate_ids_are_an_error(tmp_path, write):
    path = write(tmp_path, ["a", "b", "c", "a"], vectors_for(["a", "b", "c", "a"]))
    with pytest.raises(EncoderError, match="several vectors for item ids 'a'"):
        load_embeddings(path, CATALOG_IDS)


def test_npy_needs_its_ids_file_or_ids_path(tmp_path):
    path = tmp_path / "openai.npy"
    np.save(path, vectors_for(["b", "a", "c"]))
    with pytest.raises(EncoderError, match=r"openai\.ids\.txt, which does not exist"):
        load_embeddings(path, CATALOG_IDS)
    (tmp_path / "rows.txt").write_text("b\na\nc")
    loaded = load_embeddings(path, CATALOG_IDS, ids_path=tmp_path / "rows.txt", normalize=False)
    np.testing.assert_array_equal(loaded, vectors_for(["a", "b", "c"]))
    (tmp_path / "rows.txt").write_text("b\na")
    with pytest.raises(EncoderError, match="3 vectors but 2 item ids"):
        load_embeddings(path, CATALOG_IDS, ids_path=tmp_path / "rows.txt")


def test_safetensors_without_metadata_ids_use_the_ids_file(tmp_path):
    path = tmp_path / "qwen.safetensors"
    save_file({"vectors": vectors_for(["c", "b", "a"])}, path)  # the only tensor, any name
    (tmp_path / "qwen.ids.txt").write_text("c\nb\na\n")
    loaded = load_embeddings(path, CATALOG_IDS, normalize=False)
    np.testing.assert_array_equal(loaded, vectors_for(["a", "b", "c"]))


def test_parquet_with_one_column_per_dimension_and_integer_ids(tmp_path):
    path = tmp_path / "wide.parquet"
    pd.DataFrame({"item_id": [3, 1, 2], "d0": [3.0, 1.0, 2.0], "d1": [0.0, 0.0, 0.0]}).to_parquet(
        path
    )
    loaded = load_embeddings(path, np.array(["1", "2", "3"]), normalize=False)
    np.testing.assert_array_equal(loaded[:, 0], [1.0, 2.0, 3.0])


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(EncoderError, match=r"unknown embeddings format '\.csv'"):
        load_embeddings(tmp_path / "vectors.csv", CATALOG_IDS)
    with pytest.raises(EncoderError, match="no such embeddings file"):
        load_embeddings(tmp_path / "vectors.npy", CATALOG_IDS)
