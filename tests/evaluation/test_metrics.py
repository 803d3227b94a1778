"""Ranking metrics against values computed by hand, and against a plain-Python reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semrec.evaluation.metrics import METRICS, mean_metrics, ranking_metrics

KS = (1, 3, 5)


def _metrics_of(row: list[int], n_relevant: int, ks=KS) -> dict[str, float]:
    hits = torch.tensor([row], dtype=torch.bool)
    per_user = ranking_metrics(hits, torch.tensor([n_relevant]), ks)
    return {name: float(value[0]) for name, value in per_user.items()}


def _check(got: dict[str, float], expected: dict[str, float]) -> None:
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


def test_hits_at_ranks_1_and_3_of_5():
    # 2 relevant items, both retrieved, at (1-based) ranks 1 and 3.
    got = _metrics_of([1, 0, 1, 0, 0], n_relevant=2)
    # K=1: one hit in the top 1.
    #   recall = 1/2, precision = 1/1; DCG = 1/log2(2) = 1, IDCG over min(2, 1) = 1 hit = 1
    #   MRR = 1/1; MAP = P@1 * 1 / min(2, 1) = 1
    _check(
        got,
        {
            "recall@1": 0.5,
            "precision@1": 1.0,
            "hit_rate@1": 1.0,
            "ndcg@1": 1.0,
            "mrr@1": 1.0,
            "map@1": 1.0,
        },
    )
    # K=3: two hits in the top 3.
    #   recall = 2/2 = 1, precision = 2/3
    #   DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
    #   IDCG over min(2, 3) = 2 hits = 1/log2(2) + 1/log2(3) = 1.6309...
    #   NDCG = 1.5 / 1.6309 = 0.9197...
    #   MAP = (P@1 * 1 + P@3 * 1) / min(2, 3) = (1 + 2/3) / 2 = 5/6
    idcg_2 = 1 / math.log2(2) + 1 / math.log2(3)
    _check(
        got,
        {
            "recall@3": 1.0,
            "precision@3": 2 / 3,
            "hit_rate@3": 1.0,
            "ndcg@3": 1.5 / idcg_2,
            "mrr@3": 1.0,
            "map@3": 5 / 6,
        },
    )
    assert got["ndcg@3"] == pytest.approx(0.919721, abs=1e-6)
    # K=5: nothing new below rank 3, so only precision changes: 2/5.
    _check(
        got,
        {
            "recall@5": 1.0,
            "precision@5": 2 / 5,
            "hit_rate@5": 1.0,
            "ndcg@5": 1.5 / idcg_2,
            "mrr@5": 1.0,
            "map@5": 5 / 6,
        },
    )


def test_user_without_hits_scores_zero_everywhere():
    got = _metrics_of([0, 0, 0, 0, 0], n_relevant=3)
    _check(got, {f"{metric}@{k}": 0.0 for metric in METRICS for k in KS})


def test_fewer_relevant_items_than_k_uses_min_in_idcg_and_map():
    # 1 relevant item, retrieved at rank 2.
    got = _metrics_of([0, 1, 0, 0, 0], n_relevant=1)
    # K=1: the hit is below the cut-off: all zero.
    _check(got, {f"{metric}@1": 0.0 for metric in METRICS})
    # K=3: recall = 1/1, precision = 1/3
    #   DCG = 1/log2(3) = 0.6309; IDCG over min(1, 3) = 1 hit = 1/log2(2) = 1 -> NDCG = 0.6309
    #   (an IDCG over 3 ideal hits would give 0.6309 / 2.1309 instead)
    #   MRR = 1/2; MAP = P@2 * 1 / min(1, 3) = (1/2) / 1 = 0.5
    _check(
        got,
        {
            "recall@3": 1.0,
            "precision@3": 1 / 3,
            "hit_rate@3": 1.0,
            "ndcg@3": 1 / math.log2(3),
            "mrr@3": 0.5,
            "map@3": 0.5,
        },
    )
    assert got["ndcg@3"] == pytest.approx(0.630930, abs=1e-6)
    # K=5: same but precision = 1/5.
    _check(
        got,
        {
            "recall@5": 1.0,
            "precision@5": 1 / 5,
            "ndcg@5": 1 / math.log2(3),
            "mrr@5": 0.5,
            "map@5": 0.5,
        },
    )


def test_more_relevant_items_than_k():
    # 10 relevant items, hits at ranks 1, 2, 4, 5.
    got = _metrics_of([1, 1, 0, 1, 1], n_relevant=10)
    # K=1: recall = 1/10 (denominator |R|, not min(|R|, K)), precision = 1
    #   NDCG = 1 / 1 (IDCG over min(10, 1) = 1); MAP = P@1 / min(10, 1) = 1
    _check(
        got,
        {
            "recall@1": 0.1,
            "precision@1": 1.0,
            "hit_rate@1": 1.0,
            "ndcg@1": 1.0,
            "mrr@1": 1.0,
            "map@1": 1.0,
        },
    )
    # K=3: 2 hits. recall = 2/10, precision = 2/3
    #   DCG = 1/log2(2) + 1/log2(3) = 1.6309
    #   IDCG over min(10, 3) = 3 = 1 + 1/log2(3) + 1/log2(4) = 2.1309 -> NDCG = 0.7654
    #   MAP = (P@1 + P@2) / min(10, 3) = (1 + 1) / 3 = 2/3
    dcg_3 = 1 + 1 / math.log2(3)
    idcg_3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    _check(
        got,
        {
            "recall@3": 0.2,
            "precision@3": 2 / 3,
            "ndcg@3": dcg_3 / idcg_3,
            "mrr@3": 1.0,
            "map@3": 2 / 3,
        },
    )
    assert got["ndcg@3"] == pytest.approx(0.765361, abs=1e-6)
    # K=5: 4 hits. recall = 4/10, precision = 4/5
    #   DCG = 1 + 1/log2(3) + 1/log2(5) + 1/log2(6) = 1 + 0.6309 + 0.4307 + 0.3869 = 2.4485
    #   IDCG over 5 = 1 + 1/log2(3) + 1/log2(4) + 1/log2(5) + 1/log2(6) = 2.9485
    #   MAP = (P@1 + P@2 + P@4 + P@5) / min(10, 5) = (1 + 1 + 3/4 + 4/5) / 5 = 3.55 / 5 = 0.71
    dcg_5 = 1 + 1 / math.log2(3) + 1 / math.log2(5) + 1 / math.log2(6)
    idcg_5 = dcg_5 + 1 / math.log2(4)
    _check(
        got,
        {
            "recall@5": 0.4,
            "precision@5": 0.8,
            "ndcg@5": dcg_5 / idcg_5,
            "mrr@5": 1.0,
            "map@5": 0.71,
        },
    )
    assert got["ndcg@5"] == pytest.approx(0.830420, abs=1e-6)


def test_mrr_counts_only_hits_within_k():
    # First hit at rank 4: MRR@1 = MRR@3 = 0, MRR@5 = 1/4.
    got = _metrics_of([0, 0, 0, 1, 1], n_relevant=2)
    _check(got, {"mrr@1": 0.0, "mrr@3": 0.0, "mrr@5": 0.25, "hit_rate@3": 0.0})


def test_batch_of_users_keys_dtype_and_shape():
    hits = torch.tensor(
        [[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0], [1, 1, 0, 1, 1]], dtype=torch.bool
    )
    n_relevant = torch.tensor([2, 3, 1, 10])
    per_user = ranking_metrics(hits, n_relevant, KS)
    assert list(per_user) == [f"{metric}@{k}" for metric in METRICS for k in KS]
    for values in per_user.values():
        assert values.dtype == torch.float64
        assert values.shape == (4,)
    # Rows are independent: each row equals the single-user computation.
    for index, (row, n) in enumerate(zip(hits.tolist(), n_relevant.tolist(), strict=True)):
        single = _metrics_of([int(h) for h in row], n)
        for name, value in single.items():
            assert float(per_user[name][index]) == pytest.approx(value, abs=1e-12)
    # mean over users of recall@3 = (1 + 0 + 1 + 0.2) / 4 = 0.55
    means = mean_metrics(per_user)
    assert means["recall@3"] == pytest.approx(0.55)
    assert set(means) == set(per_user)


def _reference(row: list[bool], n_relevant: int, k: int) -> dict[str, float]:
    """Each metric straight from its definition, one user at a time."""
    top = [1.0 if hit else 0.0 for hit in row[:k]]
    n_hits = sum(top)
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(top))
    idcg = sum(1 / math.log2(r + 2) for r in range(min(n_relevant, k)))
    mrr = 0.0
    for r, h in enumerate(top):
        if h:
            mrr = 1 / (r + 1)
            break
    precisions = [sum(top[: r + 1]) / (r + 1) for r in range(k)]
    average_precision = sum(p * h for p, h in zip(precisions, top, strict=True)) / min(
        n_relevant, k
    )
    return {
        "recall": n_hits / n_relevant,
        "ndcg": dcg / idcg,
        "hit_rate": 1.0 if n_hits > 0 else 0.0,
        "precision": n_hits / k,
        "mrr": mrr,
        "map": average_precision,
    }


def test_matches_plain_python_reference():
    rng = np.random.default_rng(0)
    n_users, max_k, ks = 60, 8, (1, 2, 5, 8)
    hits = rng.random((n_users, max_k)) < 0.3
    hits[0] = False  # a user without hits
    hits[1] = True  # a user with only hits
    n_relevant = hits.sum(axis=1) + rng.integers(0, 4, size=n_users)
    n_relevant = np.maximum(n_relevant, 1)
    n_relevant[1] = max_k  # every relevant item retrieved
    per_user = ranking_metrics(torch.from_numpy(hits), torch.from_numpy(n_relevant), ks)
    for user in range(n_users):
        for k in ks:
            expected = _reference(hits[user].tolist(), int(n_relevant[user]), k)
            for metric, value in expected.items():
                got = float(per_user[f"{metric}@{k}"][user])
                assert got == pytest.approx(value, abs=1e-12), (user, metric, k)
    assert float(per_user["ndcg@8"][1]) == pytest.approx(1.0)
    assert float(per_user["map@8"][1]) == pytest.approx(1.0)


def test_columns_beyond_largest_k_are_ignored():
    hits = torch.tensor([[0, 1, 1, 1], [1, 0, 0, 1]], dtype=torch.bool)
    n_relevant = torch.tensor([3, 2])
    wide = ranking_metrics(hits, n_relevant, (1, 2))
    narrow = ranking_metrics(hits[:, :2], n_relevant, (1, 2))
    for name in wide:
        torch.testing.assert_close(wide[name], narrow[name])


def test_numpy_integer_ks_give_plain_keys():
    hits = torch.tensor([[1, 0]], dtype=torch.bool)
    per_user = ranking_metrics(hits, torch.tensor([1]), [np.int64(2)])
    assert "recall@2" in per_user


def test_no_users_gives_empty_tensors_and_nan_means():
    per_user = ranking_metrics(
        torch.zeros((0, 5), dtype=torch.bool), torch.zeros(0, dtype=torch.long), KS
    )
    assert all(values.shape == (0,) for values in per_user.values())
    assert all(math.isnan(value) for value in mean_metrics(per_user).values())


@pytest.mark.parametrize(
    ("hits", "n_relevant", "ks", "message"),
    [
        (torch.ones((2, 5), dtype=torch.bool), torch.tensor([5, 5]), (6,), "largest K"),
        (torch.ones((2, 5), dtype=torch.bool), torch.tensor([5, 5]), (), "empty"),
        (torch.ones((2, 5), dtype=torch.bool), torch.tensor([5, 5]), (0,), "positive"),
        (torch.ones((2, 5), dtype=torch.bool), torch.tensor([5, 5]), (2.0,), "positive"),
        (torch.zeros((2, 5), dtype=torch.bool), torch.tensor([1, 0]), (3,), "n_relevant = 0"),
        (torch.ones((2, 5), dtype=torch.bool), torch.tensor([5, 4]), (3,), "5 hits"),
        (torch.ones((2, 5)), torch.tensor([5, 5]), (3,), "bool"),
        (torch.ones(5, dtype=torch.bool), torch.tensor([5]), (3,), "2-D"),
        (torch.ones((2, 5), dtype=torch.bool), torch.tensor([5, 5, 5]), (3,), "shape"),
        (torch.ones((2, 5), dtype=torch.bool), torch.tensor([5.0, 5.0]), (3,), "integer"),
    ],
)
def test_invalid_inputs_raise(hits, n_relevant, ks, message):
    with pytest.raises(ValueError, match=message):
        ranking_metrics(hits, n_relevant, ks)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(1)
    hits = torch.from_numpy(rng.random((200, 20)) < 0.2)
    n_relevant = hits.sum(dim=1) + 1
    on_cpu = ranking_metrics(hits, n_relevant, (5, 20))
    on_cuda = ranking_metrics(hits.cuda(), n_relevant.cuda(), (5, 20))
    for name, values in on_cuda.items():
        assert values.device.type == "cuda"
        torch.testing.assert_close(values.cpu(), on_cpu[name])
