"""Item tokenizers on real text vectors (all-MiniLM-L6-v2 of X-Wines wines): unique codes,
collision accounting, codebook usage (no collapse), dead-code restarts, determinism, the
codes file and the LETTER code reader."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from semrec.data.formats.p5 import read_p5
from semrec.errors import ConfigError, DataError, ModelError
from semrec.models import Query, TrainData
from semrec.models.baselines import EASE
from semrec.models.generative.codes import ItemCodes
from semrec.models.generative.tokenizers import (
    ResidualKMeansTokenizer,
    RQVAETokenizer,
    break_collisions,
    codes_from_tensors,
    codes_to_tensors,
    collaborative_vectors,
    collision_rate,
    load_codes,
    load_given_codes,
    nearest,
    quality_table,
    random_codes,
    save_codes,
    sequential_codes,
    tokenize,
    tokenizer_input,
    tokenizer_quality,
)
from semrec.models.mf import MFBPR

FIXTURES = Path(__file__).parents[1] / "fixtures"
XWINES_EMBEDDINGS = FIXTURES / "embeddings" / "xwines-minilm.safetensors"

#: small settings that train in seconds
SMALL_RQVAE = {"codebook_size": 16, "epochs": 12, "batch_size": 256, "kmeans_iterations": 20}
SMALL_KMEANS = {"codebook_size": 16, "iterations": 20}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small tensors: one thread is faster, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def wine_vectors() -> np.ndarray:
    """Text vectors of all 1,007 X-Wines wines (unit length)."""
    with safe_open(XWINES_EMBEDDINGS, framework="np") as stored:
        vectors = stored.get_tensor("embeddings").astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def trained_rqvae(wine_vectors: np.ndarray) -> RQVAETokenizer:
    return RQVAETokenizer(device="cpu", **SMALL_RQVAE).fit(wine_vectors)


def assert_bijection(codes: ItemCodes, n_items: int) -> None:
    assert codes.n_items == n_items
    assert len(np.unique(codes.codes, axis=0)) == n_items
    for item in range(0, n_items, 7):
        assert codes.item_of(codes.codes[item]) == item


# --- unique codes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("rqvae", SMALL_RQVAE),
        ("rkmeans", SMALL_KMEANS),
        ("random", {"codebook_size": 16}),
        ("sequential", {"codebook_size": 16}),
    ],
)
def test_tokenizer_produces_unique_codes(
    small_item_embeddings: np.ndarray, method: str, params: dict
):
    vectors = tokenizer_input(text=small_item_embeddings)
    result = tokenize(vectors, method, source={"input": "text"}, device="cpu", **params)
    assert_bijection(result.codes, len(vectors))
    assert result.codes.source["tokenizer"] == method
    assert result.codes.source["input"] == "text"
    if method in ("rqvae", "rkmeans"):
        # 16**3 = 4,096 codes for a few hundred items: some collide, the extra level fixes it
        assert result.raw_codes.shape == (len(vectors), 3)
        assert result.codes.n_levels == 4
        np.testing.assert_array_equal(result.codes.codes[:, :3], result.raw_codes)
        assert result.codes.level_sizes[3] == result.quality["max_collision_group"]
        assert result.codes.source["collision_rate"] == result.quality["collision_rate"]


def test_collision_rate_and_breaking_on_a_hand_made_example():
    raw = np.array([[0, 0], [0, 0], [1, 0], [1, 1], [1, 1], [1, 1], [2, 0]])
    # items 0, 1 share (0, 0); items 3, 4, 5 share (1, 1); items 2 and 6 are alone
    assert collision_rate(raw) == pytest.approx(5 / 7)
    codes, extra_size = break_collisions(raw)
    assert extra_size == 3
    np.testing.assert_array_equal(codes[:, 2], [0, 1, 0, 0, 1, 2, 0])
    quality = tokenizer_quality(raw, (3, 2))
    assert quality["collision_rate"] == pytest.approx(5 / 7)
    assert quality["distinct_codes"] == 4
    assert quality["max_collision_group"] == 3
    level_1, level_2 = quality["levels"]
    assert (level_1["used"], level_1["usage"]) == (3, 1.0)
    shares = np.array([2, 4, 1]) / 7
    assert level_1["entropy_bits"] == pytest.approx(-(shares * np.log2(shares)).sum())
    assert level_2["max_entropy_bits"] == pytest.approx(1.0)
    unique, size = break_collisions(np.array([[0], [1]]))
    assert size == 1 and (unique[:, 1] == 0).all()


def test_quality_table_lists_every_tokenizer_and_level():
    raw = np.array([[0, 1], [1, 0], [1, 0]])
    quality = tokenizer_quality(raw, (2, 2), np.eye(3), np.eye(3) * 0.5)
    table = quality_table({"mine": quality, "other": tokenizer_quality(raw, (2, 2))})
    assert "| mine | 3 | 2 | 0.6667 | 2 |" in table
    assert "| other | 2 | 2 | 2 | 1.000 |" in table
    assert quality["reconstruction_mse"] == pytest.approx(0.25 / 3)


# --- RQ-VAE ----------------------------------------------------------------------------------
def test_rqvae_with_kmeans_init_uses_most_of_each_small_codebook(
    trained_rqvae: RQVAETokenizer, wine_vectors: np.ndarray
):
    result = trained_rqvae.tokenize(wine_vectors)
    for level in result.quality["levels"]:
        assert level["usage"] >= 0.9, level  # no collapse
        assert level["entropy_bits"] >= 0.8 * level["max_entropy_bits"], level
    # the decoder reconstructs better than the mean vector, and deeper codes help
    by_depth = result.quality["reconstruction_relative_mse_by_level"]
    assert by_depth[-1] < 0.9
    assert by_depth[-1] <= by_depth[0]
    assert result.quality["reconstruction_relative_mse"] == pytest.approx(by_depth[-1], rel=1e-4)
    assert len(trained_rqvae.history) == SMALL_RQVAE["epochs"]
    assert trained_rqvae.history[-1]["loss"] < trained_rqvae.history[0]["loss"]


def test_dead_code_restart_revives_a_deliberately_dead_codeword(
    wine_vectors: np.ndarray,
):
    tokenizer = RQVAETokenizer(device="cpu", **{**SMALL_RQVAE, "epochs": 2}).fit(wine_vectors)
    inputs = tokenizer.prepare(wine_vectors)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        tokenizer.model.codebooks[0, 5] = 1e3  # far from every latent: no item chooses it
    usage, restarted = tokenizer.restart_dead_codes(inputs, generator, restart=False)
    assert usage[0] < 1.0 and restarted == [0, 0, 0]
    usage, restarted = tokenizer.restart_dead_codes(inputs, generator)
    assert restarted[0] >= 1
    codeword = tokenizer.model.codebooks[0, 5].detach()
    assert codeword.abs().max() < 1e3
    with torch.no_grad():
        latents = tokenizer.model.encoder(inputs)
    # the codeword now is some item's latent (level 1 residual = latent), so it is chosen
    assert torch.isclose(latents, codeword).all(dim=1).any()
    assert (nearest(latents, tokenizer.model.codebooks[0].detach()) == 5).any()


def test_rqvae_is_deterministic_with_a_seed(wine_vectors: np.ndarray):
    vectors = wine_vectors[:300]
    params = {**SMALL_RQVAE, "epochs": 3}
    first = tokenize(vectors, "rqvae", device="cpu", **params)
    again = tokenize(vectors, "rqvae", device="cpu", **params)
    other = tokenize(vectors, "rqvae", device="cpu", **params, seed=1)
    np.testing.assert_array_equal(first.codes.codes, again.codes.codes)
    assert not np.array_equal(first.raw_codes, other.raw_codes)


def test_rqvae_rejects_bad_hyperparameters_and_inputs():
    with pytest.raises(ConfigError, match="codebook_size"):
        RQVAETokenizer(codebook_size=1)
    with pytest.raises(ConfigError, match="extra"):
        RQVAETokenizer(levels=3)
    with pytest.raises(ModelError, match="NaN"):
        RQVAETokenizer(device="cpu").fit(np.full((4, 3), np.nan))
    with pytest.raises(ModelError, match="fit"):
        RQVAETokenizer().quantize(np.ones((2, 3)))


# --- residual k-means ------------------------------------------------------------------------
def test_residual_kmeans_error_decreases_with_levels(wine_vectors: np.ndarray):
    tokenizer = ResidualKMeansTokenizer(device="cpu", n_levels=4, **SMALL_KMEANS)
    result = tokenizer.fit(wine_vectors).tokenize(wine_vectors)
    by_depth = result.quality["reconstruction_relative_mse_by_level"]
    assert len(by_depth) == 4
    assert all(deeper < shallower for shallower, deeper in itertools.pairwise(by_depth))
    assert by_depth[0] < 1.0
    # the reconstruction is the sum of the chosen centroids
    codes, partial = tokenizer.quantize(wine_vectors[:5])
    books = tokenizer.codebooks.numpy()
    summed = sum(books[level][codes[:, level]] for level in range(4))
    np.testing.assert_allclose(partial[-1], summed, atol=1e-5)
    assert all(level["usage"] == 1.0 for level in result.quality["levels"])


def test_residual_kmeans_is_deterministic_with_a_seed(wine_vectors: np.ndarray):
    first = tokenize(wine_vectors, "rkmeans", device="cpu", **SMALL_KMEANS)
    again = tokenize(wine_vectors, "rkmeans", device="cpu", **SMALL_KMEANS)
    other = tokenize(wine_vectors, "rkmeans", device="cpu", **SMALL_KMEANS, seed=3)
    np.testing.assert_array_equal(first.codes.codes, again.codes.codes)
    assert not np.array_equal(first.raw_codes, other.raw_codes)


# --- trivial indexings and inputs ------------------------------------------------------------
def test_sequential_and_random_codes_are_base_k_digits():
    sequential = sequential_codes(20, codebook_size=4)
    assert sequential.level_sizes == (4, 4, 4)  # 4**2 = 16 < 20 items
    np.testing.assert_array_equal(sequential.codes[19], [1, 0, 3])  # 19 = 1*16 + 0*4 + 3
    ordered = sequential_codes(3, codebook_size=4, order=np.array([2, 0, 1]))
    np.testing.assert_array_equal(ordered.codes[:, 0], [1, 2, 0])
    shuffled = random_codes(20, codebook_size=4, seed=5)
    numbers = shuffled.codes @ np.array([16, 4, 1])
    np.testing.assert_array_equal(np.sort(numbers), np.arange(20))
    assert not np.array_equal(numbers, np.arange(20))
    np.testing.assert_array_equal(random_codes(20, 4, seed=5).codes, shuffled.codes)
    with pytest.raises(ConfigError, match="cannot number"):
        sequential_codes(20, codebook_size=4, n_levels=2)


def test_tokenizer_input_scales_each_part_before_concatenating(
    small_item_embeddings: np.ndarray,
):
    text = small_item_embeddings
    collaborative = np.random.default_rng(0).normal(0, 30.0, (len(text), 64))
    both = tokenizer_input(text, collaborative)
    assert both.shape == (len(text), text.shape[1] + 64)
    np.testing.assert_allclose(np.linalg.norm(both[:, : text.shape[1]], axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(both[:, text.shape[1] :], axis=1), 1, rtol=1e-5)
    standardized = tokenizer_input(text, collaborative, scaling="standardize")
    for part in (standardized[:, : text.shape[1]], standardized[:, text.shape[1] :]):
        assert part.var(axis=0).sum() == pytest.approx(1.0, rel=1e-3)
    np.testing.assert_array_equal(
        tokenizer_input(collaborative=collaborative, scaling="none"),
        collaborative.astype(np.float32),
    )
    with pytest.raises(ModelError, match="one row per item"):
        tokenizer_input(text, collaborative[:10])
    with pytest.raises(ModelError, match="needs"):
        tokenizer_input()


def test_collaborative_vectors_are_the_model_item_vectors_in_the_asked_order(small_split):
    model = MFBPR(epochs=1, embedding_size=8, seed=3).fit(TrainData(small_split.train))
    _, items = model.user_item_vectors(Query.users([0]))
    ids = list(model.item_ids)
    order = [5, 0, 2]
    vectors = collaborative_vectors(model, [ids[i] for i in order])
    np.testing.assert_array_equal(vectors, items.detach().numpy()[order])
    with pytest.raises(ModelError, match="have no mf_bpr vector"):
        collaborative_vectors(model, [ids[0], "not-an-item"])
    ease = EASE(regularization=50.0).fit(TrainData(small_split.train))
    with pytest.raises(ModelError, match="no item vectors"):
        collaborative_vectors(ease, ids)


# --- persistence -----------------------------------------------------------------------------
def test_codes_file_round_trip(tmp_path: Path, wine_vectors: np.ndarray):
    result = tokenize(wine_vectors[:200], "rkmeans", source={"input": "text"}, **SMALL_KMEANS)
    item_ids = [f"wine-{i}" for i in range(200)]
    path = tmp_path / "codes.safetensors"
    save_codes(path, result.codes, item_ids)
    loaded = load_codes(path, item_ids)
    np.testing.assert_array_equal(loaded.codes, result.codes.codes)
    assert loaded.level_sizes == result.codes.level_sizes
    assert loaded.source["input"] == "text"
    assert loaded.source["config"]["codebook_size"] == 16
    assert loaded.item_of(result.codes.codes[17]) == 17
    with pytest.raises(ModelError, match=r"codes\.safetensors: its codes belong to other"):
        load_codes(path, item_ids[::-1])
    in_model = codes_from_tensors(codes_to_tensors(result.codes, "codes"), "codes")
    np.testing.assert_array_equal(in_model.codes, result.codes.codes)
    assert in_model.level_sizes == result.codes.level_sizes


def test_codes_file_errors_name_the_file(tmp_path: Path):
    missing = tmp_path / "none.safetensors"
    with pytest.raises(ModelError, match=r"none\.safetensors"):
        load_codes(missing)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match=r"broken\.safetensors"):
        load_codes(broken)
    path = tmp_path / "codes.safetensors"
    save_codes(path, sequential_codes(10, 4))
    with pytest.raises(ModelError, match=r"codes\.safetensors: holds codes of 10 items"):
        load_codes(path, [str(i) for i in range(11)])


# --- LETTER codes ----------------------------------------------------------------------------
def write_letter_index(path: Path, codes: dict[int, list[int]]) -> None:
    index = {
        str(key): [f"<{chr(ord('a') + level)}_{token}>" for level, token in enumerate(tokens)]
        for key, tokens in codes.items()
    }
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        json.dump(index, stream)


def test_letter_codes_align_to_the_p5_item_ids(tmp_path: Path):
    dataset = read_p5(FIXTURES / "formats" / "p5_beauty")
    item_ids = dataset.interactions.item_ids  # "1" .. "7": P5 ids; LETTER key = id - 1
    path = tmp_path / "Beauty.index.json.gz"
    letter = {k: [k % 3, 7 - k, 2 * k] for k in range(len(item_ids))}
    write_letter_index(path, letter)
    codes = load_given_codes(path, item_ids)
    assert codes.n_levels == 3  # unique already: nothing appended
    for row, item_id in enumerate(item_ids):
        assert codes.codes[row].tolist() == letter[int(item_id) - 1]
    assert codes.level_sizes == (3, 8, 13)
    assert load_given_codes(path, item_ids, level_sizes=(256,) * 3).level_sizes == (256,) * 3


def test_colliding_letter_codes_get_a_collision_breaking_level(tmp_path: Path):
    path = tmp_path / "Toy.index.json"
    write_letter_index(path.with_suffix(".json.gz"), {0: [1, 2], 1: [1, 2], 2: [0, 2]})
    codes = load_given_codes(path.with_suffix(".json.gz"), ["1", "2", "3"])
    np.testing.assert_array_equal(codes.codes, [[1, 2, 0], [1, 2, 1], [0, 2, 0]])
    assert codes.source["collision_rate"] == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="share their code"):
        load_given_codes(path.with_suffix(".json.gz"), ["1", "2", "3"], deduplicate=False)


def test_letter_reader_says_which_items_have_no_code(tmp_path: Path):
    path = tmp_path / "Beauty.index.json.gz"
    write_letter_index(path, {0: [1, 2], 1: [3, 4]})
    with pytest.raises(DataError, match=r"Beauty.index.json.gz: no code for 2 of 4 items.*'3'"):
        load_given_codes(path, ["1", "2", "3", "4"])
    plain = tmp_path / "bad.index.json"
    plain.write_text(json.dumps({"0": ["<a_1>", "<c_2>"]}))
    with pytest.raises(DataError, match=r"bad\.index\.json: entry '0': levels"):
        load_given_codes(plain, ["1"])
    plain.write_text(json.dumps({"0": ["a1"]}))
    with pytest.raises(DataError, match=r"bad\.index\.json: entry '0': tokens"):
        load_given_codes(plain, ["1"])
