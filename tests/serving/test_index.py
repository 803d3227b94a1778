"""Candidate filtering shared by FAISS and list-generating models."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from semrec.serving.index import top_k_of_candidates


def test_candidates_drop_excluded_and_missing_items_and_order_ties_by_index():
    items = np.array([[4, 2, 7, -1], [1, 3, 0, 2]])
    scores = np.array([[0.9, 0.9, 0.5, 0.0], [0.2, 0.8, 0.8, 0.1]], dtype=np.float32)
    exclude = sp.csr_matrix(([1.0, 1.0], ([0, 1], [4, 0])), shape=(2, 8))
    top = top_k_of_candidates(items, scores, 3, exclude)
    assert top.item_index.tolist() == [[2, 7, -1], [3, 1, 2]]
    assert np.isneginf(top.scores[0, 2].item())  # row 0 has only two candidates left
    assert top.scores[1].tolist() == np.array([0.8, 0.2, 0.1], dtype=np.float32).tolist()


def test_equal_scores_keep_the_lower_item_index_first():
    top = top_k_of_candidates(np.array([[9, 3, 5]]), np.array([[1.0, 1.0, 1.0]]), 2, None)
    assert top.item_index.tolist() == [[3, 5]]
