"""Text-aware baselines on real text vectors of the X-Wines fixture: text_knn against a numpy
computation, the PCA text initialisation of MF-BPR and the graph models, and the ID/text
score split of lightgcn_concat."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from semrec.data.splits import Split
from semrec.errors import ConfigError, ModelError
from semrec.models import Query, TrainData
from semrec.models.graph import NGCF, LightGCN, SimGCL
from semrec.models.mf import MFBPR, pca_projection
from semrec.models.text import LightGCNConcat, TextKNN


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def binary(user_items: sp.csr_matrix) -> np.ndarray:
    return (user_items.toarray() != 0).astype(np.float64)


# --- text_knn --------------------------------------------------------------------------------
def test_text_knn_scores_are_the_cosine_of_the_mean_history_vector(
    small_split: Split, small_item_embeddings: np.ndarray
):
    train = small_split.train
    model = TextKNN().fit(TrainData(train, item_embeddings=small_item_embeddings))
    users = np.arange(12)
    vectors = unit_rows(small_item_embeddings.astype(np.float64))
    seen = binary(train.user_items)[users]
    profiles = unit_rows(seen @ vectors / seen.sum(axis=1, keepdims=True))
    expected = profiles @ vectors.T
    scores = model.score(Query.users(users)).cpu().numpy()
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert np.abs(scores).max() <= 1 + 1e-5  # cosines


def test_text_knn_answers_a_history_like_the_user_with_those_items(
    small_split: Split, small_item_embeddings: np.ndarray
):
    train = small_split.train
    model = TextKNN().fit(TrainData(train, item_embeddings=small_item_embeddings))
    items = train.user_items[3].indices
    by_user = model.score(Query.users([3]))
    by_history = model.score(Query.histories([items[::-1]]))  # order does not matter
    torch.testing.assert_close(by_user, by_history)
    one_item = model.score(Query.histories([[int(items[0])]]))[0].cpu().numpy()
    vectors = unit_rows(small_item_embeddings)
    np.testing.assert_allclose(one_item, vectors @ vectors[items[0]], atol=1e-5)
    empty = model.score(Query.histories([[]]))
    assert torch.equal(empty, torch.zeros_like(empty))


# --- PCA text initialisation -----------------------------------------------------------------
def test_pca_projection_matches_an_svd_and_is_signed_deterministically(
    small_item_embeddings: np.ndarray,
):
    projection = pca_projection(small_item_embeddings, 16)
    assert projection.shape == (len(small_item_embeddings), 16)
    centred = small_item_embeddings.astype(np.float64) - small_item_embeddings.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    reference = u[:, :16] * s[:16]
    signs = np.sign((projection * reference).sum(axis=0))
    np.testing.assert_allclose(projection, reference * signs, atol=1e-6)
    largest = np.abs(projection).argmax(axis=0)
    assert (projection[largest, np.arange(16)] > 0).all()
    assert np.array_equal(projection, pca_projection(small_item_embeddings, 16))
    variances = projection.var(axis=0)
    assert (np.diff(variances) <= 1e-12).all()  # largest variance first


def test_pca_to_more_dimensions_than_the_text_has_is_refused():
    with pytest.raises(ModelError, match="PCA to 8 dimensions"):
        pca_projection(np.eye(5, 6), 8)


def initial_ego(model) -> tuple[torch.Tensor, torch.Tensor]:
    """Users' and items' layer-0 embeddings of a fitted MF-BPR or graph model."""
    if isinstance(model, MFBPR):
        return model.module.user_embedding.weight, model.module.item_embedding.weight
    weight = model.module.embedding.weight
    return weight[: model.n_users], weight[model.n_users :]


# a learning rate so small that one epoch leaves the initial embeddings in place (to ~1e-7)
FROZEN = {"epochs": 1, "batch_size": 512, "embedding_size": 16, "learning_rate": 1e-10}
TEXT_INIT_MODELS = [MFBPR, LightGCN, SimGCL, NGCF]


def frozen_params(model_class) -> dict:
    return FROZEN if model_class is MFBPR else {**FROZEN, "eval_every": 0}


@pytest.mark.parametrize("model_class", TEXT_INIT_MODELS, ids=lambda c: c.name)
def test_text_initialisation_keeps_the_pca_geometry_and_the_random_scale(
    model_class, small_split: Split, small_item_embeddings: np.ndarray
):
    train = small_split.train
    params = frozen_params(model_class)
    text = model_class(item_init="text", **params)
    assert text.needs_item_embeddings
    text.fit(TrainData(train, item_embeddings=small_item_embeddings))
    random = model_class(**params)
    assert not random.needs_item_embeddings
    random.fit(TrainData(train))
    users, items = (x.detach().double().cpu().numpy() for x in initial_ego(text))
    _, random_items = initial_ego(random)
    assert items.shape == (train.n_items, 16) and users.shape == (train.n_users, 16)
    # the scale of the model's own random initialisation (same seed: the same draw)
    assert np.linalg.norm(items, axis=1).mean() == pytest.approx(
        random_items.detach().norm(dim=1).mean().item(), rel=1e-5
    )
    # the items' relative geometry is the PCA projection's
    projection = unit_rows(pca_projection(small_item_embeddings, 16))
    np.testing.assert_allclose(
        unit_rows(items) @ unit_rows(items).T, projection @ projection.T, atol=1e-5
    )
    # users start at the mean of their training items
    seen = binary(train.user_items)
    np.testing.assert_allclose(users, seen @ items / seen.sum(axis=1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize("model_class", [MFBPR, LightGCN], ids=lambda c: c.name)
def test_text_initialisation_is_deterministic(
    model_class, small_split: Split, small_item_embeddings: np.ndarray
):
    data = TrainData(small_split.train, item_embeddings=small_item_embeddings)
    first = model_class(item_init="text", **frozen_params(model_class)).fit(data)
    second = model_class(item_init="text", **frozen_params(model_class)).fit(data)
    for a, b in zip(initial_ego(first), initial_ego(second), strict=True):
        assert torch.equal(a, b)


# --- ID + text concatenation -----------------------------------------------------------------
@pytest.fixture(scope="module")
def concat(small_split: Split, small_item_embeddings: np.ndarray) -> LightGCNConcat:
    model = LightGCNConcat(epochs=3, batch_size=256, embedding_size=16, eval_every=0)
    return model.fit(TrainData(small_split.train, item_embeddings=small_item_embeddings))


def test_concat_score_parts_sum_to_the_score(concat: LightGCNConcat):
    query = Query.users(np.arange(20))
    id_part, text_part = concat.score_parts(query)
    assert id_part.shape == text_part.shape == (20, concat.n_items)
    torch.testing.assert_close(id_part + text_part, concat.score(query))
    assert not torch.equal(text_part, torch.zeros_like(text_part))


def test_concat_items_are_an_id_half_and_a_projection_of_their_text(
    concat: LightGCNConcat, small_item_embeddings: np.ndarray
):
    module = concat.module
    items = module.ego()[concat.n_users :].detach()
    torch.testing.assert_close(items[:, :8], module.item_id.weight.detach())
    text = F.normalize(torch.from_numpy(small_item_embeddings), dim=1)
    torch.testing.assert_close(items[:, 8:], text @ module.text_projection.weight.detach().T)
    assert not module.item_text.requires_grad  # frozen: a buffer, not a parameter
    assert "item_text" not in dict(module.named_parameters())


def test_concat_needs_an_even_embedding_size_and_random_item_init():
    with pytest.raises(ConfigError, match="even"):
        LightGCNConcat(embedding_size=15)
    with pytest.raises(ConfigError, match="item_init"):
        LightGCNConcat(item_init="text")


# --- missing or wrong vectors ----------------------------------------------------------------
NEEDS_TEXT = [
    TextKNN(),
    LightGCNConcat(epochs=1, eval_every=0),
    MFBPR(epochs=1, item_init="text"),
    LightGCN(epochs=1, eval_every=0, item_init="text"),
]


@pytest.mark.parametrize("model", NEEDS_TEXT, ids=lambda m: m.name)
def test_a_model_needing_text_fails_clearly_without_it(model, small_split: Split):
    assert model.needs_item_embeddings
    with pytest.raises(ModelError, match=f"{model.name} needs item text embeddings"):
        model.fit(TrainData(small_split.train))
    wrong_count = np.ones((small_split.train.n_items - 1, 8), dtype=np.float32)
    with pytest.raises(ModelError, match="expected"):
        model.fit(TrainData(small_split.train, item_embeddings=wrong_count))
