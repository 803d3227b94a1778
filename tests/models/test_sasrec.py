"""SASRec and the sequential protocol (leave-one-out, history queries), on real X-Wines
sequences: split boundaries, the causal mask, memorising a small set of sequences, history
queries, the losses against hand computations, persistence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semrec.data import Dataset, Interactions
from semrec.data.splits import LeaveOneOutSplit, Split, split
from semrec.errors import ConfigError
from semrec.evaluation.evaluate import evaluation_histories
from semrec.experiment import fit_timed
from semrec.models import Query, TrainData, load_model
from semrec.models.sasrec import (
    PADDING,
    SASRec,
    SelfAttentiveEncoder,
    next_item_loss,
    right_aligned,
)

TINY = {"embedding_size": 16, "epochs": 2, "batch_size": 64, "eval_every": 0, "max_len": 5}


def positions_in_time(x: Interactions) -> np.ndarray:
    """Each row's 0-based position in its user's time order."""
    order = x.time_order
    counts = np.bincount(x.user_index, minlength=x.n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.empty(len(x), dtype=np.int64)
    position[order] = np.arange(len(x)) - starts[x.user_index[order]]
    return position


@pytest.fixture(scope="module")
def truncated(small_dataset: Dataset) -> Dataset:
    """Real X-Wines histories, user u cut to its first 1 + u % 5 events (so 1, 2, 3, 4, 5)."""
    x = small_dataset.interactions
    return small_dataset.select(positions_in_time(x) < 1 + x.user_index % 5)


@pytest.fixture(scope="module")
def loo_split(small_dataset: Dataset) -> Split:
    return split(small_dataset, LeaveOneOutSplit())


@pytest.fixture(scope="module")
def fitted(loo_split: Split) -> SASRec:
    return SASRec(**TINY).fit(TrainData(loo_split.train))


# --- the protocol -------------------------------------------------------------------------
def test_leave_one_out_boundaries_are_exact(truncated: Dataset):
    full = truncated.interactions.sequences()
    lengths = np.array([len(s) for s in full])
    assert set(lengths) == {1, 2, 3, 4, 5}
    s = split(truncated, LeaveOneOutSplit())
    train, valid, test = s.train.sequences(), s.valid.sequences(), s.test.sequences()
    for user, events in enumerate(full):
        n = len(events)
        if n >= 3:  # test = last, valid = second last, train = the rest
            expected = events[:-2], events[-2:-1], events[-1:]
        elif n == 2:  # no validation item
            expected = events[:1], events[:0], events[-1:]
        else:  # a single event stays in training
            expected = events, events[:0], events[:0]
        for got, want in zip((train[user], valid[user], test[user]), expected, strict=True):
            np.testing.assert_array_equal(got, want)
    # ... and in time, not only in row order
    assert s.train.timestamp is not None
    last_train = np.full(truncated.interactions.n_users, np.iinfo(np.int64).min)
    np.maximum.at(last_train, s.train.user_index, s.train.timestamp)
    assert (s.valid.timestamp >= last_train[s.valid.user_index]).all()
    assert (s.test.timestamp >= last_train[s.test.user_index]).all()
    # at test time a history model sees everything but the test item, in time order
    for user, history in enumerate(evaluation_histories(s, "test")):
        n_held_out = 1 if lengths[user] >= 2 else 0
        np.testing.assert_array_equal(history, full[user][: lengths[user] - n_held_out])


def test_right_aligned_keeps_the_last_items():
    tokens = right_aligned([np.array([4, 5, 6, 7]), np.array([2]), np.array([], dtype=int)], 3)
    assert tokens.tolist() == [[6, 7, 8], [PADDING, PADDING, 3], [PADDING] * 3]


# --- the network --------------------------------------------------------------------------
def test_causal_mask_hides_later_items(loo_split: Split):
    torch.manual_seed(0)
    encoder = SelfAttentiveEncoder(loo_split.train.n_items, 16, 2, 2, 0.5, 8).eval()
    sequence = next(s for s in loo_split.train.sequences() if len(s) >= 6)[:6]
    tokens = torch.from_numpy(right_aligned([sequence], 8))  # two padding slots first
    perturbed = tokens.clone()
    perturbed[0, 5] = 1 + (sequence[3] + 1) % loo_split.train.n_items
    assert perturbed[0, 5] != tokens[0, 5]
    with torch.no_grad():
        before, after = encoder(tokens), encoder(perturbed)
    torch.testing.assert_close(before[:, :5], after[:, :5], rtol=0, atol=1e-6)
    assert not torch.allclose(before[:, 5:], after[:, 5:])
    assert torch.isfinite(before).all()  # padding positions attend to themselves only


def test_output_does_not_depend_on_padded_keys():
    torch.manual_seed(0)
    encoder = SelfAttentiveEncoder(10, 8, 1, 1, 0.0, 4).eval()
    tokens = torch.tensor([[PADDING, PADDING, 3, 4]])
    with torch.no_grad():
        base = encoder(tokens)
        encoder.item_embedding.weight[PADDING].fill_(5.0)  # what a padding slot would carry
        changed = encoder(tokens)
    torch.testing.assert_close(base[:, 2:], changed[:, 2:], rtol=0, atol=1e-6)


def test_memorises_a_small_set_of_real_sequences(small_dataset: Dataset):
    # 20 real users, each their first five wines in time order; the model must learn to
    # continue every four-wine prefix with its fifth wine
    x = small_dataset.interactions
    sequences = [s[:5] for s in x.sequences() if len(s) >= 5 and len(set(s[:5])) == 5][:20]
    assert len(sequences) == 20 and len({tuple(s[:4]) for s in sequences}) == 20
    users = np.repeat(np.arange(20), 5)
    items = x.item_ids[np.concatenate(sequences)]
    data = Interactions.from_ids(users, items, timestamp=np.tile(np.arange(5), 20))
    model = SASRec(
        embedding_size=32,
        n_layers=1,
        dropout=0.0,
        max_len=5,
        epochs=40,
        batch_size=20,
        learning_rate=1e-2,
        eval_every=0,
    ).fit(TrainData(data))
    tracks = data.sequences()
    scores = model.score(Query.histories([t[:4] for t in tracks]))
    predicted = scores.argmax(dim=1).numpy()
    assert (predicted == np.array([t[4] for t in tracks])).all()


def test_history_query_equals_the_users_own_sequence(fitted: SASRec, loo_split: Split):
    sequences = loo_split.train.sequences()
    users = np.arange(40)
    assert any(len(sequences[u]) > fitted.config.max_len for u in users)  # truncation too
    by_user = fitted.score(Query.users(users))
    by_history = fitted.score(Query.histories([sequences[u] for u in users]))
    assert torch.equal(by_user, by_history)
    # a query with both uses the history
    other = [sequences[u][:2] for u in users]
    both = fitted.score(Query(users, other))
    assert torch.equal(both, fitted.score(Query.histories(other)))
    assert not torch.equal(both, by_user)


def test_config_checks_heads_divide_the_size():
    with pytest.raises(ConfigError, match="divisible"):
        SASRec(embedding_size=10, n_heads=3)


# --- losses -------------------------------------------------------------------------------
def test_losses_equal_hand_computations_on_two_items():
    hidden = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    items = torch.tensor([[1.0, 1.0], [2.0, -1.0]])  # scores: [1, 2] and [2, -2]
    targets = torch.tensor([0, 1])
    negatives = torch.tensor([1, 0])
    ce = ((-1 + math.log(math.e**1 + math.e**2)) + (2 + math.log(math.e**2 + math.e**-2))) / 2
    assert next_item_loss(hidden, items, targets, "ce").item() == pytest.approx(ce, rel=1e-6)

    def log_sigmoid(z: float) -> float:
        return -math.log(1 + math.exp(-z))

    # positive scores 1 and -2, negative scores 2 and 2: -log σ(pos) - log σ(-neg)
    bce = -(log_sigmoid(1) + log_sigmoid(-2) + log_sigmoid(-2) + log_sigmoid(-2)) / 2
    got = next_item_loss(hidden, items, targets, "bce", negatives).item()
    assert got == pytest.approx(bce, rel=1e-6)
    bpr = -(log_sigmoid(1 - 2) + log_sigmoid(-2 - 2)) / 2
    got = next_item_loss(hidden, items, targets, "bpr", negatives).item()
    assert got == pytest.approx(bpr, rel=1e-6)


@pytest.mark.parametrize("loss", ["ce", "bce", "bpr"])
def test_every_loss_learns(loss: str, loo_split: Split):
    model = SASRec(**{**TINY, "epochs": 3, "loss": loss}).fit(TrainData(loo_split.train))
    losses = [record["loss"] for record in model.history]
    assert losses[-1] < losses[0]


# --- persistence and the experiment layer ----------------------------------------------------
def test_save_load_keeps_history_and_sequence_scores(fitted: SASRec, loo_split: Split, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    users = np.arange(loo_split.train.n_users)
    assert torch.equal(fitted.score(Query.users(users)), loaded.score(Query.users(users)))
    histories = [np.array([3, 1, 4]), np.array([], dtype=np.int64)]
    assert torch.equal(
        fitted.score(Query.histories(histories)), loaded.score(Query.histories(histories))
    )


def test_early_stopping_on_the_validation_split(small_dataset: Dataset, loo_split: Split, tmp_path):
    model = SASRec(**{**TINY, "epochs": 4, "eval_every": 1, "patience": 1})
    fit_timed(model, small_dataset, loo_split, work_dir=tmp_path)
    assert all("valid_recall@20" in record for record in model.history)
    assert 1 <= len(model.history) <= 4
    assert (tmp_path / "history.jsonl").read_text().count("\n") == len(model.history)
