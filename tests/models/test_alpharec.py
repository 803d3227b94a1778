"""AlphaRec on real X-Wines slices with real all-MiniLM-L6-v2 vectors of the wines' text."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semrec.errors import ModelError
from semrec.models import Query, TrainData
from semrec.models.alpharec import AlphaRec, history_mean_operator, reference_hidden_size
from semrec.training.loop import Objective, bpr_epoch

FAST = {"epochs": 1, "batch_size": 512, "mlp_hidden_size": 32, "eval_every": 0, "negatives": 16}


@pytest.fixture(scope="module")
def fitted(small_split, small_item_embeddings) -> AlphaRec:
    return AlphaRec(**FAST).fit(TrainData(small_split.train, item_embeddings=small_item_embeddings))


def test_reference_hidden_size_reproduces_the_reference_mlp():
    assert reference_hidden_size(3072, 64) == 1536  # text-embedding-3-large in the paper


def test_user_layer_zero_is_the_mlp_of_the_mean_history_vector(fitted, small_split):
    module = fitted.module
    seen = small_split.train.user_items
    with torch.no_grad():
        ego = module.ego()
        for user in (0, 5, 17):
            items = seen[user].indices
            mean_text = module.item_text[items].mean(0, keepdim=True)
            expected = module.project(mean_text)[0]
            torch.testing.assert_close(ego[user], expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            ego[fitted.n_users :], module.project(module.item_text), rtol=1e-4, atol=1e-5
        )


def test_history_mean_operator_averages_each_users_items(small_split):
    matrix, transpose = history_mean_operator(small_split.train.user_items, torch.device("cpu"))
    dense = matrix.to_dense()
    counts = np.diff(small_split.train.user_items.indptr)
    np.testing.assert_allclose(dense.sum(1).numpy(), (counts > 0).astype(np.float32), rtol=1e-5)
    torch.testing.assert_close(transpose.to_dense(), dense.T)


def test_propagated_shapes_and_cosine_scores(fitted, small_split):
    users, items = fitted.final_embeddings()
    assert users.shape == (small_split.train.n_users, 64)
    assert items.shape == (small_split.train.n_items, 64)
    scores = fitted.score(Query.users([0, 1, 2]))
    assert scores.abs().max() <= 1 + 1e-5  # cosine similarities


def test_a_training_epoch_lowers_the_softmax_loss(small_split, small_item_embeddings):
    model = AlphaRec(**FAST)
    data = TrainData(small_split.train, item_embeddings=small_item_embeddings)
    model.fit(data)  # builds graph and module
    objective = model.config.objective()
    rng = np.random.default_rng(0)
    optimizer = torch.optim.Adam(model.module.parameters(), lr=5e-3)
    seen = small_split.train.user_items

    def epoch() -> float:
        return bpr_epoch(model._batch_terms, optimizer, seen, 512, rng, model.device, objective)

    first = epoch()
    for _ in range(3):
        last = epoch()
    assert last < first
    assert objective == Objective("softmax", 16, 0.15, positives="users")  # as the reference


def test_zero_shot_scores_equal_training_scores_without_propagation(
    small_split, small_item_embeddings
):
    # with no layers an item's embedding is MLP(text): a "new" item with the same text as
    # a known item must get exactly that item's score
    model = AlphaRec(**{**FAST, "n_layers": 0}).fit(
        TrainData(small_split.train, item_embeddings=small_item_embeddings)
    )
    items = [3, 10, 42]
    query = Query.users([0, 7])
    known = model.score(query)[:, items]
    new = model.score_new_items(query, small_item_embeddings[items])
    torch.testing.assert_close(new, known, rtol=1e-4, atol=1e-5)


def test_intention_alone_and_mixed_with_a_user(fitted, small_item_embeddings):
    intention = small_item_embeddings[[4]]  # a wine's own description as the query
    alone = fitted.score_intention(intention)
    assert alone.shape == (1, fitted.n_items)
    _, items = fitted.final_embeddings()
    expected = fitted.project_text(intention) @ F.normalize(items, dim=1).T
    torch.testing.assert_close(alone, expected)
    mixed = fitted.score_intention(intention, users=np.array([2]))
    assert not torch.allclose(mixed, alone)
    with pytest.raises(ModelError, match="1 intention"):
        fitted.score_intention(intention, users=np.array([2, 3]))


def test_wrong_vectors_are_refused(fitted):
    with pytest.raises(ModelError, match="vectors from the encoder"):
        fitted.project_text(np.zeros((2, 17), dtype=np.float32))
    with pytest.raises(ModelError, match="NaN"):
        fitted.project_text(np.full((1, 384), np.nan, dtype=np.float32))


def test_fit_without_item_embeddings_says_what_is_missing(small_split):
    with pytest.raises(ModelError, match="encoder"):
        AlphaRec(**FAST).fit(TrainData(small_split.train))
