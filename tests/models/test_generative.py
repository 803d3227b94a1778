"""Generative retrieval (``tiger``): the code trie, constrained beam search against exhaustive
scoring, memorising real X-Wines sequences, exclusions, persistence, evaluation by lists,
and the codes file route from the tokenizers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semrec.data import Dataset, Interactions
from semrec.data.splits import LeaveOneOutSplit, Split, split
from semrec.errors import ConfigError, ModelError
from semrec.evaluation.evaluate import evaluate
from semrec.models import Query, TrainData, load_model, top_k
from semrec.models.generative import seq2seq
from semrec.models.generative.codes import ItemCodes
from semrec.models.generative.decoding import (
    CodeTrie,
    constrained_beam_search,
    exhaustive_scores,
)
from semrec.models.generative.seq2seq import Tiger, history_windows
from semrec.models.generative.tokenizers import save_codes

TINY = {
    "embedding_size": 32,
    "n_layers": 1,
    "n_heads": 2,
    "feedforward_size": 64,
    "epochs": 2,
    "batch_size": 128,
    "eval_every": 0,
    "beam_size": 10,
    "max_history": 5,
}


def sequential_codes(n_items: int, level_size: int, n_levels: int) -> ItemCodes:
    """Item i's code = i written in base ``level_size`` with ``n_levels`` digits."""
    digits = (np.arange(n_items)[:, None] // level_size ** np.arange(n_levels)[::-1]) % level_size
    return ItemCodes(digits, (level_size,) * n_levels, {"tokenizer": "sequential"})


def fit_tiger(train: Interactions, codes: ItemCodes, **params) -> Tiger:
    model = Tiger(**{**TINY, **params})
    model.item_codes = codes
    return model.fit(TrainData(train))


@pytest.fixture(scope="module")
def loo_split(small_dataset: Dataset) -> Split:
    return split(small_dataset, LeaveOneOutSplit())


@pytest.fixture(scope="module")
def fitted(loo_split: Split) -> Tiger:
    return fit_tiger(loo_split.train, sequential_codes(loo_split.train.n_items, 20, 2))


# --- the trie -----------------------------------------------------------------------------
def test_trie_tables_follow_the_codes():
    codes = ItemCodes(np.array([[0, 1, 0], [0, 1, 1], [2, 0, 0], [0, 0, 1]]), (3, 2, 2))
    trie = CodeTrie.from_codes(codes)
    assert trie.children[0].tolist() == [[0, -1, 1]]  # prefixes (0,), (2,)
    assert trie.children[1].tolist() == [[0, 1], [2, -1]]  # (0,0), (0,1) | (2,0)
    assert trie.children[2].tolist() == [[-1, 3], [0, 1], [2, -1]]  # items after the last level
    for level in range(3):  # each item's prefix node holds that item's prefix tokens
        prefixes = trie.node_prefixes[level][trie.node_of_item[level]]
        assert torch.equal(prefixes, trie.codes[:, :level])


def table_step_fn(tables: list[torch.Tensor], level_sizes: tuple[int, ...]):
    """A decoder stand-in: fixed random log-probabilities per (query, level, prefix)."""

    def step(prefixes: torch.Tensor, level: int, parents: torch.Tensor | None) -> torch.Tensor:
        radix = torch.tensor(
            [int(np.prod(level_sizes[j + 1 : level])) for j in range(level)], dtype=torch.long
        )
        prefix_index = (prefixes * radix).sum(-1)  # [B, W]: the prefix in mixed radix
        table = tables[level]  # [B, n_prefixes, V]
        return table.gather(1, prefix_index.unsqueeze(2).expand(-1, -1, table.shape[2]))

    return step


@st.composite
def decoding_problems(draw):
    level_sizes = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    all_codes = np.stack(np.meshgrid(*[np.arange(s) for s in level_sizes], indexing="ij"), -1)
    all_codes = all_codes.reshape(-1, len(level_sizes))
    chosen = draw(
        st.lists(st.integers(0, len(all_codes) - 1), min_size=1, max_size=12, unique=True)
    )
    codes = ItemCodes(all_codes[chosen], level_sizes)
    n_queries = draw(st.integers(1, 3))
    beam_size = draw(st.integers(1, 14))
    seed = draw(st.integers(0, 2**16))
    exclude = draw(st.booleans())
    return codes, n_queries, beam_size, seed, exclude


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(decoding_problems())
def test_constrained_beam_search_emits_only_real_distinct_items(problem):
    codes, n_queries, beam_size, seed, exclude = problem
    generator = torch.Generator().manual_seed(seed)
    sizes = codes.level_sizes
    tables = [
        torch.randn(n_queries, int(np.prod(sizes[:level])), size, generator=generator)
        .mul(3)
        .log_softmax(-1)
        for level, size in enumerate(sizes)
    ]
    step = table_step_fn(tables, sizes)
    trie = CodeTrie.from_codes(codes)
    excluded = torch.rand(n_queries, codes.n_items, generator=generator) < 0.4 if exclude else None
    result = constrained_beam_search(step, n_queries, beam_size, trie, excluded)
    assert result.item_index.shape == (n_queries, beam_size)
    exact = exhaustive_scores(step, n_queries, trie)
    for query in range(n_queries):
        items = result.item_index[query]
        allowed = torch.ones(codes.n_items, dtype=torch.bool)
        if excluded is not None:
            allowed = ~excluded[query]
        n_found = int((items >= 0).sum())
        assert n_found == min(beam_size, int(allowed.sum()))  # no beam lost on a dead end
        assert (items[:n_found] >= 0).all() and (items[n_found:] == -1).all()
        found = items[:n_found]
        assert len(set(found.tolist())) == n_found  # distinct items
        assert allowed[found].all()  # never an excluded item
        for item, code in zip(found.tolist(), result.codes[query, :n_found].tolist(), strict=True):
            assert codes.item_of(code) == item  # a real code, and the item's own
        scores = result.scores[query, :n_found]
        assert (scores[:-1] >= scores[1:]).all()
        torch.testing.assert_close(scores, exact[query, found])  # the code's true score
        if beam_size >= codes.n_items:  # nothing pruned: the exact ranking
            best = exact[query].masked_fill(~allowed, -torch.inf)
            torch.testing.assert_close(scores, best.sort(descending=True).values[:n_found])


# --- beam search against exhaustive scoring with a real decoder ------------------------------
def test_beam_search_top10_equals_exhaustive_top10(loo_split: Split):
    # 362 wines, 3-level codes 8x8x8, a random-initialised model (flat distributions are the
    # hard case for beam search): with 30 beams every user's top 10 is exact (with 20 beams
    # 91% of users' lists are)
    train = loo_split.train
    model = fit_tiger(
        train, sequential_codes(train.n_items, 8, 3), epochs=1, n_layers=2, beam_size=30
    )
    torch.manual_seed(0)
    model.module = model._module().to(model.device).eval()  # fresh random weights
    query = Query.users(np.arange(train.n_users))
    beam = model.recommend(query, 10, exclude_seen=False)
    exact = top_k(model.score(query), 10)
    assert torch.equal(beam.item_index, exact.item_index)
    torch.testing.assert_close(beam.scores, exact.scores)


def test_exhaustive_scores_equal_teacher_forced_log_probabilities(loo_split: Split):
    # incremental decoding (one token per trie node, cached earlier positions) against the
    # training path, which decodes each item's whole code at once
    train = loo_split.train
    model = fit_tiger(train, sequential_codes(train.n_items, 8, 3), epochs=1, n_layers=2)
    model.module.eval()
    query = Query.users(np.arange(5))
    scores = model.score(query)
    memory, padding = model._encode(query)
    codes = model.trie.codes  # [n_items, 3]
    words = model._decoder_tokens(codes[:, :-1]).expand(5, -1, -1)  # bos + first two words
    with torch.no_grad():
        hidden = model.module.decode(memory, padding, words)  # [5, n_items, 3, d]
        teacher_forced = sum(
            model.module.level_logits(hidden[:, :, level], level)
            .log_softmax(-1)
            .gather(2, codes[:, level].expand(5, -1).unsqueeze(2))
            .squeeze(2)
            for level in range(3)
        )
    torch.testing.assert_close(scores, teacher_forced, atol=1e-5, rtol=1e-5)


def test_encoder_leaves_out_all_padding_columns_without_changing_states(loo_split: Split):
    # a batch of short histories, then the same rows next to a full-length one: the short
    # rows' memory at their own positions is the same, and only used columns are kept
    train = loo_split.train
    model = fit_tiger(train, sequential_codes(train.n_items, 8, 3), epochs=1, n_layers=2)
    model.module.eval()
    windows = torch.full((3, model.config.max_history), -1)
    windows[0, -2:] = torch.tensor([4, 7])
    windows[1, -1] = 9
    windows[2] = torch.arange(model.config.max_history)
    tokens = model._encoder_tokens(windows, None)
    with torch.no_grad():
        short, short_padding = model.module.encode(tokens[:2])
        full, full_padding = model.module.encode(tokens)
    assert short.shape[1] == 2 * 3 + 1  # two items of three words, and eos
    assert full.shape[1] == tokens.shape[1]
    assert torch.equal(short_padding, full_padding[:2, -7:])
    kept = ~short_padding
    torch.testing.assert_close(short[kept], full[:2, -7:][kept], atol=1e-5, rtol=1e-5)


# --- learning -----------------------------------------------------------------------------
def test_length_groups_train_like_whole_batches(loo_split: Split, monkeypatch):
    # a batch's loss as a share-weighted sum over groups of similar history length is the
    # batch's mean loss: without dropout, the epochs' losses and the trained scores agree;
    # the last batch holds one example, fewer than the groups
    train, codes = loo_split.train, sequential_codes(loo_split.train.n_items, 8, 3)
    n_examples = int((np.bincount(train.user_index) - 1).clip(min=0).sum())
    fitted = {}
    for groups in (1, 4):
        monkeypatch.setattr(seq2seq, "LENGTH_GROUPS", {"cpu": groups})
        fitted[groups] = fit_tiger(
            train, codes, epochs=2, n_layers=2, dropout=0.0, batch_size=n_examples - 1
        )
    losses = {groups: [e["loss"] for e in m.history] for groups, m in fitted.items()}
    assert np.isfinite(losses[4]).all()
    np.testing.assert_allclose(losses[4], losses[1], rtol=1e-4)
    query = Query.users(np.arange(20))
    torch.testing.assert_close(fitted[4].score(query), fitted[1].score(query), atol=1e-3, rtol=1e-3)


def test_memorises_real_sequences_to_full_hit_rate(small_dataset: Dataset):
    # 10 real users (distinct first wines), each their first six wines in time order; every
    # prefix must be continued by its next wine at rank 1
    x = small_dataset.interactions
    candidates = [s[:6] for s in x.sequences() if len(s) >= 6 and len(set(s[:6])) == 6]
    first_seen: dict[int, np.ndarray] = {}
    for sequence in candidates:
        first_seen.setdefault(int(sequence[0]), sequence)
    sequences = list(first_seen.values())[:10]
    assert len(sequences) == 10
    users = np.repeat(np.arange(10), 6)
    data = Interactions.from_ids(
        users, x.item_ids[np.concatenate(sequences)], timestamp=np.tile(np.arange(6), 10)
    )
    model = fit_tiger(
        data,
        sequential_codes(data.n_items, 8, 2),
        embedding_size=64,
        n_layers=2,
        n_heads=4,
        feedforward_size=128,
        dropout=0.0,
        epochs=40,  # 100 % from about 20 epochs on
        batch_size=25,
        learning_rate=3e-3,
        learning_rate_schedule="constant",
    )
    tracks = data.sequences()
    prefixes = [t[:cut] for t in tracks for cut in range(1, 6)]
    targets = np.array([t[cut] for t in tracks for cut in range(1, 6)])
    top = model.recommend(Query.histories(prefixes), k=1, exclude_seen=False)
    hit_rate = (top.item_index[:, 0].numpy() == targets).mean()
    assert hit_rate == 1.0


# --- queries ------------------------------------------------------------------------------
def test_recommend_returns_exactly_k_and_excludes_the_history(fitted: Tiger, loo_split: Split):
    sequences = loo_split.train.sequences()
    histories = [sequences[u] for u in range(30)]
    for k in (5, 10, 25):  # 25 > beam_size: the search widens to k beams
        top = fitted.recommend(Query.histories(histories), k=k)
        assert top.item_index.shape == top.scores.shape == (30, k)
        assert torch.isfinite(top.scores).all()
        assert (top.scores[:, :-1] >= top.scores[:, 1:]).all()
        for history, row in zip(histories, top.item_index.numpy(), strict=True):
            assert len(set(row.tolist())) == k
            assert not set(row.tolist()) & set(history.tolist())


def test_an_exhausted_catalogue_pads_with_minus_infinity(fitted: Tiger):
    n_items = fitted.n_items
    history = np.arange(n_items - 3)  # all but three items seen
    top = fitted.recommend(Query.histories([history]), k=5)
    items, scores = top.item_index[0].tolist(), top.scores[0]
    assert set(items[:3]) == {n_items - 3, n_items - 2, n_items - 1}
    assert torch.isfinite(scores[:3]).all() and torch.isinf(scores[3:]).all()
    assert len(set(items)) == 5


def test_user_queries_read_the_users_training_sequence(fitted: Tiger, loo_split: Split):
    users = np.arange(12)
    sequences = loo_split.train.sequences()
    by_user = fitted.recommend(Query.users(users), k=10)
    by_history = fitted.recommend(Query.histories([sequences[u] for u in users]), k=10)
    assert torch.equal(by_user.item_index, by_history.item_index)


def test_history_windows_are_right_aligned():
    items = np.array([10, 11, 12, 13, 20])
    windows = history_windows(items, np.array([0, 0, 4]), np.array([4, 1, 5]), 3)
    assert windows.tolist() == [[11, 12, 13], [-1, -1, 10], [-1, -1, 20]]


# --- persistence and evaluation --------------------------------------------------------------
def test_save_load_gives_identical_recommendations(fitted: Tiger, loo_split: Split, tmp_path):
    fitted.save(tmp_path / "tiger")
    loaded = load_model(tmp_path / "tiger")
    assert isinstance(loaded, Tiger)
    assert np.array_equal(loaded.item_codes.codes, fitted.item_codes.codes)
    query = Query.users(np.arange(20))
    assert torch.equal(
        fitted.recommend(query, 10).item_index, loaded.recommend(query, 10).item_index
    )
    assert torch.equal(fitted.score(query), loaded.score(query))


def test_evaluate_ranks_by_generated_lists(fitted: Tiger, loo_split: Split):
    assert not fitted.scores_all_items
    result = evaluate(fitted, loo_split, ks=(10,))
    assert result.protocol["evaluated_users"] == loo_split.test.n_users
    assert 0.0 <= result.metrics["recall@10"] <= 1.0
    excluded = loo_split.train.user_items + loo_split.valid.user_items
    rows = np.arange(len(result.user_index))
    assert not excluded[result.user_index[:, None], result.top_items].toarray()[rows].any()


def test_exhaustive_ranking_evaluates_by_scores(loo_split: Split):
    train = loo_split.train
    model = fit_tiger(train, sequential_codes(train.n_items, 20, 2), exhaustive_ranking=True)
    assert model.scores_all_items
    result = evaluate(model, loo_split, ks=(10,))
    assert 0.0 <= result.metrics["recall@10"] <= 1.0


# --- codes in, errors out ------------------------------------------------------------------
def test_codes_file_from_the_tokenizer(loo_split: Split, tmp_path):
    train = loo_split.train
    codes = sequential_codes(train.n_items, 20, 2)
    save_codes(tmp_path / "codes.safetensors", codes, item_ids=train.item_ids)
    model = Tiger(**TINY, codes=str(tmp_path / "codes.safetensors")).fit(TrainData(train))
    assert np.array_equal(model.item_codes.codes, codes.codes)
    shuffled = train.item_ids[::-1]
    save_codes(tmp_path / "other.safetensors", codes, item_ids=shuffled)
    with pytest.raises(ModelError, match="other items"):
        Tiger(**TINY, codes=str(tmp_path / "other.safetensors")).fit(TrainData(train))


def test_missing_or_mismatched_codes_are_refused(loo_split: Split):
    with pytest.raises(ModelError, match="needs item codes"):
        Tiger(**TINY).fit(TrainData(loo_split.train))
    with pytest.raises(ModelError, match="cover 10 items"):
        fit_tiger(loo_split.train, sequential_codes(10, 4, 2))
    with pytest.raises(ConfigError, match="divisible"):
        Tiger(embedding_size=30, n_heads=4)


def test_hashed_user_words(loo_split: Split):
    train = loo_split.train
    model = fit_tiger(train, sequential_codes(train.n_items, 20, 2), n_user_tokens=8)
    users = np.arange(10)
    sequences = train.sequences()
    with_user = model.recommend(Query(users, [sequences[u] for u in users]), k=10)
    by_user = model.recommend(Query.users(users), k=10)
    assert torch.equal(with_user.item_index, by_user.item_index)
    anonymous = model.recommend(Query.histories([sequences[u] for u in users]), k=10)
    assert anonymous.item_index.shape == (10, 10)  # no user word: still a full list
