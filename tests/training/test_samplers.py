"""Negative sampling and the losses, on the real X-Wines slice and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semrec.training.loop import Objective
from semrec.training.losses import sampled_softmax_loss
from semrec.training.samplers import (
    bpr_batches,
    known_items,
    sample_negatives,
    user_uniform_pairs,
)


def test_negatives_are_never_the_users_items_nor_items_without_training(small_split):
    seen = small_split.train.user_items.tocsr()
    keep = np.ones(seen.shape[1], dtype=np.float32)
    keep[:10] = 0  # the first 10 items lose their training interactions
    cold = (seen @ sp.diags(keep)).tocsr()
    cold.eliminate_zeros()
    known = set(known_items(cold).tolist())
    assert not known & set(range(10))
    users = np.repeat(np.arange(cold.shape[0]), 20)
    negatives = sample_negatives(cold, users, np.random.default_rng(0))
    assert set(negatives.tolist()) <= known
    assert cold[users, negatives].sum() == 0


def test_batches_cover_every_positive_once_with_per_pair_and_shared_negatives(small_split):
    seen = small_split.train.user_items
    for per_pair, shared, shape in ((1, False, (100,)), (8, False, (100, 8)), (8, True, (1, 8))):
        batches = list(bpr_batches(seen, 100, np.random.default_rng(1), per_pair, shared))
        users = np.concatenate([b[0] for b in batches])
        items = np.concatenate([b[1] for b in batches])
        assert len(users) == seen.nnz
        assert seen[users, items].sum() == seen.nnz
        assert batches[0][2].shape == shape
        if not shared:
            first_users, _, negatives = batches[0]
            rows = np.repeat(first_users, per_pair)
            assert seen[rows, negatives.reshape(-1)].sum() == 0


def test_user_uniform_draws_weigh_every_user_alike_and_are_positives(small_split):
    seen = small_split.train.user_items
    degrees = np.diff(seen.indptr)
    rng = np.random.default_rng(3)
    draws = [user_uniform_pairs(seen, rng) for _ in range(40)]
    users = np.concatenate([d[0] for d in draws])
    items = np.concatenate([d[1] for d in draws])
    assert len(draws[0][0]) == seen.nnz
    assert seen[users, items].sum() == len(users)  # every draw is a training pair
    counts = np.bincount(users, minlength=seen.shape[0])
    assert counts[degrees == 0].sum() == 0
    expected = len(users) / np.count_nonzero(degrees)
    z = (counts[degrees > 0] - expected) / math.sqrt(expected)
    assert np.abs(z).max() < 5  # uniform over users, whatever their number of items
    # pair sampling gives each user draws in proportion to their items; this does not
    assert abs(np.corrcoef(counts[degrees > 0], degrees[degrees > 0])[0, 1]) < 0.1
    heaviest = int(np.argmax(degrees))
    its_items = np.bincount(items[users == heaviest], minlength=seen.shape[1])
    row = seen.indices[seen.indptr[heaviest] : seen.indptr[heaviest + 1]]
    per_item = counts[heaviest] / len(row)
    assert np.abs(its_items[row] - per_item).max() < 5 * math.sqrt(per_item) + 1


def test_user_uniform_batches_have_an_epoch_of_draws(small_split):
    seen = small_split.train.user_items
    batches = list(bpr_batches(seen, 100, np.random.default_rng(1), positives="users"))
    users, items, negatives = (np.concatenate([b[k] for b in batches]) for k in range(3))
    assert len(users) == seen.nnz
    assert seen[users, items].sum() == seen.nnz
    assert seen[users, negatives].sum() == 0
    with pytest.raises(ValueError, match="positives"):
        Objective(positives="items")


def test_sampled_softmax_loss_by_hand():
    positive = torch.tensor([0.5, 0.0])
    negative = torch.tensor([[0.1, -0.2], [0.3, 0.0]])
    tau = 0.5
    expected = np.mean(
        [
            -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(0.2) + math.exp(-0.4))),
            -math.log(1.0 / (1.0 + math.exp(0.6) + 1.0)),
        ]
    )
    loss = sampled_softmax_loss(positive, negative, tau)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert Objective("softmax", 2, tau)(positive, negative).item() == pytest.approx(expected)


def test_bpr_objective_refuses_several_negatives():
    with pytest.raises(ValueError, match="one negative"):
        Objective("bpr", negatives=4)
