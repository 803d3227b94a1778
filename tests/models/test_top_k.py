"""top_k orders ties by item index, also when a tie crosses the k boundary."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semrec.models import top_k


def test_ties_inside_the_top_k_are_ordered_by_item_index():
    scores = torch.tensor([[0.5, 0.9, 0.9, 0.1, 0.9]])
    top = top_k(scores, 3)
    assert top.item_index.tolist() == [[1, 2, 4]]
    assert top.scores[0].tolist() == pytest.approx([0.9, 0.9, 0.9])


def test_a_tie_crossing_the_boundary_keeps_the_lowest_indices():
    # items 0, 2, 3, 5 tie at 1.0; k = 3 must take 0, 2, 3 (not 5), whatever topk does
    scores = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.5, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    top = top_k(scores, 3)
    assert top.item_index.tolist() == [[0, 2, 3], [0, 1, 2]]


def test_minus_infinity_ranks_last_and_k_is_capped_by_the_catalogue():
    scores = torch.tensor([[float("-inf"), 2.0, 1.0]])
    top = top_k(scores, 10)
    assert top.item_index.tolist() == [[1, 2, 0]]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.sampled_from([float("-inf"), 0.0, 0.5, 1.0, 2.0]), min_size=6, max_size=6),
        min_size=1,
        max_size=4,
    ),
    k=st.integers(1, 7),
)
def test_equals_a_stable_sort_by_score_then_item_index(rows, k):
    # few distinct values: ties inside the top k, across its boundary, or none at all
    scores = torch.tensor(rows)
    expected = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    top = top_k(scores, k)
    assert top.item_index.tolist() == expected.tolist()
    assert torch.equal(top.scores, scores.gather(1, expected))
