"""Known-answer fixtures: a block-diagonal world where the right answer is obvious."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semrec.data import Interactions
from semrec.errors import ModelError
from semrec.models import MODEL_REGISTRY, Query, TrainData
from semrec.models.baselines import _invert_spd_in_place
from tests.models.test_contract import FAST_PARAMS


def two_communities() -> Interactions:
    """Users 0-9 like items 0-9, users 10-19 like items 10-19; each user misses 3 of their block."""
    users, items = [], []
    for user in range(20):
        block = range(0, 10) if user < 10 else range(10, 20)
        missing = {block[user % 10], block[(user + 3) % 10], block[(user + 6) % 10]}
        for item in block:
            if item not in missing:
                users.append(user)
                items.append(item)
    return Interactions.from_ids(np.array(users), np.array(items))


@pytest.mark.parametrize("name", ["item_knn", "ease", "mf_bpr"])
def test_recommends_within_the_users_community(name):
    data = two_communities()
    params = dict(FAST_PARAMS[name])
    if name == "mf_bpr":
        # rank 2 can only express the two communities; a full-rank MF would memorise the
        # missing in-block items as negatives (they are sampled as such)
        params.update(
            epochs=200, batch_size=32, learning_rate=2e-2, weight_decay=1e-2, embedding_size=2
        )
    model = MODEL_REGISTRY[name](**params).fit(TrainData(data))
    top = model.recommend(Query.users(np.arange(20)), k=3).item_index.numpy()
    for user in range(20):
        block = set(range(0, 10)) if user < 10 else set(range(10, 20))
        assert set(top[user]) <= block, (name, user, top[user])


def test_most_pop_ranks_by_distinct_users():
    data = Interactions.from_ids(
        ["a", "a", "b", "b", "c", "c", "c"], ["x", "y", "x", "z", "x", "y", "y"]
    )  # x: 3 users, y: 2 users (c twice counts once), z: 1 user
    model = MODEL_REGISTRY["most_pop"]().fit(TrainData(data))
    top = model.recommend(Query.histories([[]]), k=3, exclude_seen=False)
    assert data.item_ids[top.item_index[0].numpy()].tolist() == ["x", "y", "z"]
    assert top.scores[0].tolist() == [3.0, 2.0, 1.0]


def test_ease_refuses_a_catalogue_beyond_its_memory_limit():
    model = MODEL_REGISTRY["ease"](memory_limit_gib=1e-6)
    with pytest.raises(ModelError, match="memory_limit_gib"):
        model.fit(TrainData(two_communities()))


def test_in_place_inverse_equals_numpy_and_allocates_no_second_matrix():
    rows = two_communities().user_items.toarray().astype(np.float64)
    gram = torch.from_numpy(rows.T @ rows + 5.0 * np.eye(rows.shape[1]))
    expected = np.linalg.inv(gram.numpy())
    inverse = _invert_spd_in_place(gram)
    assert inverse.data_ptr() == gram.data_ptr()
    np.testing.assert_allclose(inverse.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_ease_float32_solve_matches_float64(small_split):
    data = TrainData(small_split.train)
    exact = MODEL_REGISTRY["ease"](regularization=50.0).fit(data)
    lean = MODEL_REGISTRY["ease"](regularization=50.0, solve_precision="float32").fit(data)
    np.testing.assert_allclose(lean.weights.numpy(), exact.weights.numpy(), atol=1e-5)
    users = Query.users(np.arange(50))
    assert torch.equal(
        lean.recommend(users, k=10).item_index, exact.recommend(users, k=10).item_index
    )
