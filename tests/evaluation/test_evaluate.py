"""evaluate(): full ranking with exclusions, checked on a case small enough to rank by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semrec.data import Dataset, Interactions
from semrec.data.splits import ColdItemSplit, Split, split
from semrec.errors import ModelError
from semrec.evaluation import evaluate
from semrec.models import Query, Recommender, TrainData
from semrec.models.base import ModelConfig
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


class FixedScores(Recommender):
    """A stub whose scores are a given table (one row per user): known answers by hand."""

    name = "fixed_scores"
    Config = ModelConfig

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)

    def _fit(self, data: TrainData) -> None:
        pass

    def score(self, query: Query) -> torch.Tensor:
        return self.table[torch.from_numpy(self.check_users(query))].to(self.device)

    def _state(self) -> dict[str, torch.Tensor]:
        return {"table": self.table}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.table = tensors["table"]


def cold_split() -> tuple[Split, FixedScores]:
    # i2, i3, i4 are held out: no training rows; the non-candidates i0, i1 score highest
    train = part([("u0", "i0"), ("u1", "i1"), ("u2", "i0"), ("u2", "i1")])
    test = part([("u0", "i4"), ("u1", "i3"), ("u2", "i2")])
    data_split = Split(
        train=train,
        test=test,
        valid=None,
        protocol={"protocol": "cold_items"},
        candidate_items=np.array([2, 3, 4]),
    )
    #        i0   i1   i2   i3   i4
    table = [
        [9.0, 8.0, 1.0, 3.0, 2.0],  # u0: candidates ranked i3, i4, i2 -> test i4 at rank 2
        [8.0, 9.0, 7.0, 0.0, 6.0],  # u1: i2, i4, i3 -> test i3 at rank 3
        [0.0, 0.0, 4.0, 4.0, 1.0],  # u2: tie i2 = i3 -> lower index first: i2, i3, i4
    ]
    return data_split, FixedScores(table).fit(TrainData(train))


def test_candidate_items_restrict_the_ranking_computed_by_hand():
    data_split, model = cold_split()
    result = evaluate(model, data_split, ks=(1, 2, 3))
    assert result.top_items.tolist() == [[3, 4, 2], [2, 4, 3], [2, 3, 4]]
    assert result.per_user["recall@1"].tolist() == [0.0, 0.0, 1.0]
    assert result.per_user["recall@2"].tolist() == [1.0, 0.0, 1.0]
    assert result.per_user["recall@3"].tolist() == [1.0, 1.0, 1.0]
    assert result.per_user["mrr@3"].tolist() == pytest.approx([1 / 2, 1 / 3, 1.0])
    assert result.metrics["ndcg@2"] == pytest.approx((1 / np.log2(3) + 0 + 1) / 3)
    # the candidates are the catalogue: top-1 lists show i3, i2, i2 -> 2 of 3 candidates
    assert result.metrics["coverage@1"] == pytest.approx(2 / 3)
    assert result.metrics["coverage@3"] == pytest.approx(1.0)
    assert result.protocol["ranking"] == "ranked among 3 held-out items"
    # without the restriction the un-seen non-candidates i0 / i1 would lead u0's and u1's lists
    full = Split(data_split.train, data_split.test, None, {"protocol": "hand"})
    assert evaluate(model, full, ks=(1,)).top_items[:, 0].tolist() == [1, 0, 2]


def test_k_larger_than_the_candidates_is_a_clear_error():
    data_split, model = cold_split()
    with pytest.raises(ModelError, match="K=4 exceeds the 3 held-out items"):
        evaluate(model, data_split, ks=(2, 4))


def test_cold_items_split_ranks_only_held_out_wines(small_dataset: Dataset):
    data_split = split(small_dataset, ColdItemSplit(item_ratio=0.2, seed=3))
    model = MostPop().fit(TrainData(data_split.train))
    result = evaluate(model, data_split, ks=(10,))
    assert np.isin(result.top_items, data_split.candidate_items).all()
    n_held_out = len(data_split.candidate_items)
    assert result.protocol["ranking"] == f"ranked among {n_held_out} held-out items"
    assert result.protocol["n_held_out_items"] == n_held_out
    assert len(result.user_index) == np.count_nonzero(data_split.test.user_counts())
