"""LightGCN: normalisation and propagation against dense references, training, resuming."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from semrec.data import Interactions
from semrec.models import TrainData
from semrec.models.graph import LightGCN, LightGCNModule, normalized_adjacency, sparse_tensor


def tiny_graph() -> sp.csr_matrix:
    # 2 users x 3 items: u0-i0, u0-i1, u1-i1, u1-i2 (a 5-node path i0-u0-i1-u1-i2)
    return sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))


def test_normalisation_matches_the_formula():
    a = normalized_adjacency(tiny_graph()).toarray()
    # node order u0, u1, i0, i1, i2; degrees 2, 2, 1, 2, 1
    assert a.shape == (5, 5)
    assert a[0, 2] == pytest.approx(1 / np.sqrt(2 * 1))  # u0-i0
    assert a[0, 3] == pytest.approx(1 / np.sqrt(2 * 2))  # u0-i1
    assert a[1, 4] == pytest.approx(1 / np.sqrt(2 * 1))  # u1-i2
    assert a[0, 4] == 0 and a[0, 1] == 0  # no user-user edges, no u0-i2 edge
    np.testing.assert_array_equal(a, a.T)


def test_propagation_equals_a_dense_computation():
    torch.manual_seed(0)
    module = LightGCNModule(n_users=2, n_items=3, embedding_size=4, n_layers=3)
    adjacency = normalized_adjacency(tiny_graph())
    users, items = module.propagate(sparse_tensor(adjacency, torch.device("cpu")))
    dense = torch.from_numpy(adjacency.toarray())
    e0 = module.embedding.weight.detach()
    layers = [e0, dense @ e0, dense @ dense @ e0, dense @ dense @ dense @ e0]
    expected = sum(layers) / 4
    torch.testing.assert_close(torch.cat([users, items]).detach(), expected)


def small_interactions() -> Interactions:
    rng = np.random.default_rng(0)  # structure: users 0-29 like items 0-19, others 20-39
    users, items = [], []
    for user in range(60):
        block = np.arange(20) if user < 30 else np.arange(20, 40)
        chosen = rng.choice(block, size=8, replace=False)
        users += [user] * 8
        items += chosen.tolist()
    return Interactions.from_ids(users, items)


FAST = {"embedding_size": 8, "batch_size": 64, "learning_rate": 1e-2, "eval_every": 0}


def test_training_lowers_the_loss():
    model = LightGCN(epochs=6, **FAST).fit(TrainData(small_interactions()))
    losses = [record["loss"] for record in model.history]
    assert losses[-1] < losses[0]


def test_resume_from_checkpoint_continues_identically(tmp_path):
    data = small_interactions()
    straight = LightGCN(epochs=4, **FAST).fit(TrainData(data))
    LightGCN(epochs=2, **FAST).fit(TrainData(data, work_dir=tmp_path))
    resumed = LightGCN(epochs=4, **FAST).fit(TrainData(data, work_dir=tmp_path))
    assert torch.equal(straight.module.embedding.weight, resumed.module.embedding.weight)
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in history] == [1, 2, 3, 4]


def test_monitor_runs_every_n_epochs_and_early_stopping_keeps_the_best():
    data = small_interactions()
    calls = []

    def monitor():
        calls.append(1)  # a metric that only gets worse: stop after 2 flat evaluations
        return {"valid_recall@20": 1.0 / len(calls)}

    params = {**FAST, "eval_every": 2, "patience": 2}
    model = LightGCN(epochs=20, **params).fit(TrainData(data, monitor=monitor))
    assert [r["epoch"] for r in model.history if "valid_recall@20" in r] == [2, 4, 6]
    assert len(model.history) == 6
