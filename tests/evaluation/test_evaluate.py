"""evaluate(): full ranking with exclusions, checked on a case small enough to rank by hand."""

from __future__ import annotations

import pytest

from semrec.data import Interactions
from semrec.data.splits import Split
from semrec.errors import ModelError
from semrec.evaluation import evaluate
from semrec.models import TrainData
from semrec.models.baselines import MostPop

USERS, ITEMS = ["u0", "u1", "u2"], ["i0", "i1", "i2", "i3", "i4"]


def part(pairs: list[tuple[str, str]]) -> Interactions:
    users, items = zip(*pairs, strict=True) if pairs else ((), ())
    return Interactions.from_ids(
        list(users), list(items), user_vocabulary=USERS, item_vocabulary=ITEMS
    )


def test_most_pop_ranks_computed_by_hand():
    # popularity: i0 2, i1 2, i2 1, i3 0, i4 0 (ties -> lower index first)
    train = part([("u0", "i0"), ("u1", "i0"), ("u1", "i1"), ("u2", "i1"), ("u2", "i2")])
    valid = part([("u0", "i1")])
    test = part([("u0", "i2"), ("u1", "i3")])  # u2 has no test item: not evaluated
    data_split = Split(train=train, test=test, valid=valid, protocol={"protocol": "hand"})
    model = MostPop().fit(TrainData(train))
    result = evaluate(model, data_split, ks=(1, 2))
    # u0: train i0 and valid i1 excluded -> ranking i2, i3, i4: test item i2 at rank 1
    # u1: train i0, i1 excluded -> ranking i2, i3, i4: test item i3 at rank 2
    assert result.user_index.tolist() == [0, 1]
    assert result.per_user["recall@1"].tolist() == [1.0, 0.0]
    assert result.per_user["recall@2"].tolist() == [1.0, 1.0]
    assert result.metrics["ndcg@2"] == pytest.approx((1.0 + 1 / 1.584962500721156) / 2)
    assert result.top_items[:, :2].tolist() == [[2, 3], [2, 3]]
    assert result.protocol["excluded"] == "train+valid"
    # on the validation part only training items are excluded: u0 ranks i1 first
    valid_result = evaluate(model, data_split, ks=(1,), part="valid")
    assert valid_result.per_user["recall@1"].tolist() == [1.0]


def test_k_larger_than_the_catalogue_is_a_clear_error():
    train = part([("u0", "i0")])
    data_split = Split(train=train, test=part([("u0", "i1")]), valid=None, protocol={})
    with pytest.raises(ModelError, match="catalogue size"):
        evaluate(MostPop().fit(TrainData(train)), data_split, ks=(10,))
