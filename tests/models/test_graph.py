"""Graph CF (LightGCN, NGCF, SimGCL): normalisation, propagation and gradients against dense
references, dropout, the contrastive loss by hand, training, resuming."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from semrec.data import Interactions
from semrec.models import TrainData
from semrec.models.graph import (
    NGCF,
    Graph,
    LightGCN,
    NGCFPropagation,
    PropagatedEmbeddings,
    SimGCL,
    gather_rows,
    mean_adjacency_with_self_loops,
    normalized_adjacency,
    users_and_items,
    xavier_uniform_per_table,
)
from semrec.training.loop import learning_rate_at
from semrec.training.losses import info_nce, l2_penalty

CPU = torch.device("cpu")


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


def dense_adjacency() -> torch.Tensor:
    return torch.from_numpy(normalized_adjacency(tiny_graph()).toarray())


def test_lightgcn_propagation_equals_a_dense_computation():
    torch.manual_seed(0)
    module = PropagatedEmbeddings(2, 3, embedding_size=4, n_layers=3, include_ego=True)
    users, items = module.propagate(Graph.build(tiny_graph(), CPU))
    a, e0 = dense_adjacency(), module.embedding.weight.detach()
    expected = (e0 + a @ e0 + a @ a @ e0 + a @ a @ a @ e0) / 4
    torch.testing.assert_close(torch.cat([users, items]).detach(), expected)


def test_simgcl_leaves_out_the_ego_layer_and_adds_noise_of_norm_epsilon():
    torch.manual_seed(0)
    module = PropagatedEmbeddings(2, 3, embedding_size=4, n_layers=2, include_ego=False)
    graph = Graph.build(tiny_graph(), CPU)
    a, e0 = dense_adjacency(), module.embedding.weight.detach()
    clean = torch.cat(module.propagate(graph)).detach()
    torch.testing.assert_close(clean, (a @ e0 + a @ a @ e0) / 2)
    one_layer = PropagatedEmbeddings(2, 3, embedding_size=4, n_layers=1, include_ego=False)
    noisy = torch.cat(one_layer.propagate(graph, noise=0.1)).detach()
    clean = a @ one_layer.embedding.weight.detach()
    perturbation = noisy - clean
    torch.testing.assert_close(perturbation.norm(dim=1), torch.full((5,), 0.1))
    assert torch.all(torch.sign(perturbation) == torch.sign(clean))  # same orthant


def test_ngcf_propagation_follows_equation_7():
    torch.manual_seed(0)
    module = NGCFPropagation(2, 3, embedding_size=4, n_layers=2, message_dropout=0.1).eval()
    users, items = module.propagate(Graph.build(tiny_graph(), CPU))
    a = dense_adjacency()
    layer = module.embedding.weight.detach()
    expected = [layer]
    for w1, w2 in zip(module.neighbour_weights, module.interaction_weights, strict=True):
        side = a @ layer
        layer = F.leaky_relu(
            ((a + torch.eye(5)) @ layer) @ w1.weight.T
            + w1.bias
            + (side * layer) @ w2.weight.T
            + w2.bias,
            0.2,
        ).detach()
        expected.append(layer / layer.norm(dim=1, keepdim=True))
    torch.testing.assert_close(torch.cat([users, items]).detach(), torch.cat(expected, dim=1))


def test_mean_adjacency_with_self_loops_matches_the_formula():
    a = mean_adjacency_with_self_loops(tiny_graph()).toarray()
    # node order u0, u1, i0, i1, i2; degrees with the self-loop 3, 3, 2, 3, 2
    expected = np.zeros((5, 5), dtype=np.float32)
    for node, neighbours in enumerate([[2, 3], [3, 4], [0], [0, 1], [1]]):
        expected[node, [node, *neighbours]] = 1 / (len(neighbours) + 1)
    np.testing.assert_allclose(a, expected)
    graph = Graph.build(tiny_graph(), CPU, "mean_with_self_loops")
    torch.testing.assert_close(graph.adjacency.to_dense(), torch.from_numpy(expected))
    torch.testing.assert_close(graph.transpose.to_dense(), torch.from_numpy(expected.T))
    dropped = graph.with_dropout(0.5)
    torch.testing.assert_close(dropped.transpose.to_dense(), dropped.adjacency.to_dense().T)


def test_ngcf_reference_code_layer_follows_the_official_code():
    torch.manual_seed(0)
    module = NGCFPropagation(2, 3, 4, n_layers=2, message_dropout=0.1, layer="reference_code")
    module.eval()
    assert module.neighbour_weights[0].bias.abs().sum() > 0  # Xavier-drawn, not zeros
    users, items = module.propagate(Graph.build(tiny_graph(), CPU, "mean_with_self_loops"))
    a = torch.from_numpy(mean_adjacency_with_self_loops(tiny_graph()).toarray())
    layer = module.embedding.weight.detach()
    expected = [layer]
    for w1, w2 in zip(module.neighbour_weights, module.interaction_weights, strict=True):
        side = a @ layer
        layer = (
            F.leaky_relu(side @ w1.weight.T + w1.bias, 0.2)
            + F.leaky_relu((side * layer) @ w2.weight.T + w2.bias, 0.2)
        ).detach()
        expected.append(layer / layer.norm(dim=1, keepdim=True))
    torch.testing.assert_close(torch.cat([users, items]).detach(), torch.cat(expected, dim=1))


def test_dropout_scales_kept_entries_and_keeps_the_transpose_exact():
    torch.manual_seed(0)
    graph = Graph.build(tiny_graph(), CPU)
    assert graph.with_dropout(0.0) is graph
    dropped = graph.with_dropout(0.5)
    values = dropped.adjacency.to_dense()
    original = graph.adjacency.to_dense()
    kept = values != 0
    assert 0 < kept.sum() < (original != 0).sum()  # some of the 8 entries dropped, not all
    torch.testing.assert_close(values[kept], original[kept] * 2)
    torch.testing.assert_close(dropped.transpose.to_dense(), values.T)


def test_the_product_gradient_equals_the_dense_gradient_on_a_non_symmetric_graph():
    torch.manual_seed(1)
    dropped = Graph.build(tiny_graph(), CPU).with_dropout(0.5)
    x = torch.randn(5, 3, requires_grad=True)
    weights = torch.randn(5, 3)
    (dropped.product(x) * weights).sum().backward()
    torch.testing.assert_close(x.grad, dropped.adjacency.to_dense().T @ weights)


def test_gathered_rows_and_their_gradient_equal_indexing_with_repeated_rows():
    table = torch.arange(12, dtype=torch.float32).reshape(4, 3).requires_grad_()
    index = torch.tensor([[2, 0], [2, 2]])  # row 2 three times, rows 1 and 3 never
    weights = torch.tensor([[[1.0], [2.0]], [[3.0], [4.0]]])
    rows = gather_rows(table, index)
    torch.testing.assert_close(rows, table.detach()[index])
    (rows * weights).sum().backward()
    # d/d row 2 = 1 + 3 + 4, d/d row 0 = 2, rows 1 and 3 get nothing
    expected = torch.tensor([[2.0] * 3, [0.0] * 3, [8.0] * 3, [0.0] * 3])
    torch.testing.assert_close(table.grad, expected)


def test_ego_penalty_counts_repeated_nodes_as_the_gathered_rows_do():
    torch.manual_seed(0)
    module = PropagatedEmbeddings(2, 3, embedding_size=4, n_layers=1, include_ego=True)
    users, positives = torch.tensor([0, 0, 1]), torch.tensor([1, 1, 2])
    negatives = torch.tensor([[0, 2], [2, 2], [0, 0]])  # two negatives per pair
    ego = module.embedding.weight
    expected = l2_penalty(ego[users], ego[2 + positives], ego[2 + negatives])
    penalty = module.ego_penalty(users, positives, negatives)
    torch.testing.assert_close(penalty, expected)
    (gradient,) = torch.autograd.grad(penalty, ego)
    (expected_gradient,) = torch.autograd.grad(expected, ego)
    torch.testing.assert_close(gradient, expected_gradient)


def test_info_nce_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    # cosines: a0.b0 = 1, a0.b1 = 1/√2, a1.b0 = 0, a1.b1 = 1/√2; temperature 0.5
    s = 1 / np.sqrt(2)
    row0 = -np.log(np.exp(2) / (np.exp(2) + np.exp(2 * s)))
    row1 = -np.log(np.exp(2 * s) / (np.exp(0) + np.exp(2 * s)))
    assert info_nce(a, b, 0.5).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


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


MODELS = [LightGCN, NGCF, SimGCL]


@pytest.mark.parametrize("model_class", MODELS, ids=lambda c: c.name)
def test_training_lowers_the_loss(model_class):
    model = model_class(epochs=6, **FAST).fit(TrainData(small_interactions()))
    losses = [record["loss"] for record in model.history]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("model_class", MODELS, ids=lambda c: c.name)
def test_resume_from_checkpoint_continues_identically(model_class, tmp_path):
    data = small_interactions()
    straight = model_class(epochs=4, **FAST).fit(TrainData(data))
    model_class(epochs=2, **FAST).fit(TrainData(data, work_dir=tmp_path))
    resumed = model_class(epochs=4, **FAST).fit(TrainData(data, work_dir=tmp_path))
    for name, tensor in straight.module.state_dict().items():
        assert torch.equal(tensor, resumed.module.state_dict()[name]), name
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


def test_cosine_schedule_by_hand_and_resumed_exactly(tmp_path):
    assert learning_rate_at("cosine", 0.1, 0, 4) == pytest.approx(0.1)
    assert learning_rate_at("cosine", 0.1, 2, 4) == pytest.approx(0.05)  # half way
    assert learning_rate_at("constant", 0.1, 3, 4) == 0.1
    data = small_interactions()
    params = {**FAST, "learning_rate_schedule": "cosine"}
    straight = LightGCN(epochs=4, **params).fit(TrainData(data))
    assert [r["learning_rate"] for r in straight.history] == pytest.approx(
        [0.01 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(4)]
    )

    def crash():  # the schedule spans all 4 epochs: interrupt the run instead of shortening it
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # at epoch 2, after epoch 1's checkpoint
        LightGCN(epochs=4, **{**params, "eval_every": 2}).fit(
            TrainData(data, monitor=crash, work_dir=tmp_path)
        )
    resumed = LightGCN(epochs=4, **params).fit(TrainData(data, work_dir=tmp_path))
    assert torch.equal(straight.module.embedding.weight, resumed.module.embedding.weight)


def test_simgcl_without_the_contrastive_term_draws_no_noisy_views():
    model = SimGCL(epochs=1, contrastive_weight=0.0, **FAST).fit(TrainData(small_interactions()))
    users, positives, negatives = (
        torch.tensor([0, 31]),
        torch.tensor([1, 22]),
        torch.tensor([25, 3]),
    )
    user_final, item_final = model.module.propagate(model.graph)
    rng_before = torch.get_rng_state()
    positive_scores, negative_scores, extra = model._batch_terms(users, positives, negatives)
    assert torch.equal(torch.get_rng_state(), rng_before)  # a noisy view would draw from it
    user = user_final[users]
    torch.testing.assert_close(positive_scores, (user * item_final[positives]).sum(dim=1))
    torch.testing.assert_close(negative_scores, (user * item_final[negatives]).sum(dim=1))
    penalty = model.module.ego_penalty(users, positives, negatives)
    torch.testing.assert_close(extra, model.config.weight_decay * penalty)


def test_users_and_items_splits_rows_and_passes_gradients_back():
    table = torch.arange(12.0).reshape(6, 2).requires_grad_()
    users, items = users_and_items(table, 2)
    assert users.tolist() == [[0.0, 1.0], [2.0, 3.0]] and len(items) == 4
    (users.sum() + 2 * items.sum()).backward()
    assert table.grad.tolist() == [[1.0, 1.0]] * 2 + [[2.0, 2.0]] * 4


def test_xavier_per_table_draws_users_and_items_with_their_own_bounds():
    # 30 users and 1,000 items of 8 dims: bounds √(6/38) = 0.397 and √(6/1008) = 0.077
    weight = torch.empty(1030, 8)
    torch.manual_seed(0)
    xavier_uniform_per_table(weight, 30)
    users, items = users_and_items(weight, 30)
    assert 0.3 < users.abs().max() <= (6 / 38) ** 0.5
    assert 0.07 < items.abs().max() <= (6 / 1008) ** 0.5
    ngcf = NGCFPropagation(30, 1000, 8, n_layers=1, message_dropout=0.0)
    assert ngcf.embedding.weight[:30].abs().max() > 0.3  # not the joint bound √(6/1038) = 0.076
    simgcl = SimGCL(epochs=1, contrastive_weight=0.0, **FAST).fit(TrainData(small_interactions()))
    weight = simgcl._module().embedding.weight
    joint_bound = (6 / (len(weight) + weight.shape[1])) ** 0.5
    user_bound = (6 / (simgcl.n_users + weight.shape[1])) ** 0.5
    assert joint_bound < weight[: simgcl.n_users].abs().max() <= user_bound
