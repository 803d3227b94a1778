"""Interactions and ItemCatalog: indexing, views and text rendering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from semrec.data import Interactions, ItemCatalog
from semrec.errors import DataError, UnknownUserError


def test_integer_ids_sort_numerically_and_stay_apart_from_indices():
    x = Interactions.from_ids([10, 2, 10], [7, 7, 30])
    assert x.user_ids.tolist() == ["2", "10"]
    assert x.item_ids.tolist() == ["7", "30"]
    assert x.user_index.tolist() == [1, 0, 1]
    assert x.user_index_of(["10"]).tolist() == [1]
    with pytest.raises(UnknownUserError, match="99"):
        x.user_index_of(["99"])
    with pytest.raises(DataError, match="unknown item"):
        x.item_index_of(["8"])


def test_user_items_is_binary_and_counts_repeats_once():
    x = Interactions.from_ids(["u", "u", "u", "v"], ["a", "a", "b", "a"])
    assert x.user_items.toarray().tolist() == [[1.0, 1.0], [1.0, 0.0]]
    assert x.item_counts().tolist() == [2, 1]
    assert x.user_counts().tolist() == [2, 1]
    assert x.density == pytest.approx(3 / 4)


def test_sequences_follow_timestamps_then_reading_order():
    x = Interactions.from_ids(["u", "u", "u", "v"], ["a", "b", "c", "a"], timestamp=[5, 1, 5, 0])
    sequences = x.sequences()
    assert x.item_ids[sequences[0]].tolist() == ["b", "a", "c"]  # a and c tie: reading order
    assert x.item_ids[sequences[1]].tolist() == ["a"]


def test_compact_drops_unused_ids_and_keeps_order():
    x = Interactions.from_ids(["u", "v", "w"], ["a", "b", "c"]).select(
        np.array([True, False, True])
    )
    small = x.compact()
    assert small.user_ids.tolist() == ["u", "w"]
    assert small.item_ids.tolist() == ["a", "c"]
    assert small.to_frame().values.tolist() == [["u", "a"], ["w", "c"]]


def test_interactions_are_read_only():
    x = Interactions.from_ids([1, 2], [1, 2])
    with pytest.raises(ValueError):
        x.user_index[0] = 5


def test_fingerprint_changes_with_content():
    a = Interactions.from_ids([1, 2], [1, 2])
    assert a.fingerprint() == Interactions.from_ids([1, 2], [1, 2]).fingerprint()
    assert a.fingerprint() != Interactions.from_ids([1, 2], [2, 1]).fingerprint()


def catalog() -> ItemCatalog:
    frame = pd.DataFrame(
        {
            "id": ["w1", "w2"],
            "name": ["Malbec", "Malbec"],
            "winery": ["Alta", "Baja"],
            "region": ["Mendoza", ""],
        }
    )
    return ItemCatalog.from_frame(frame, "id", "{name} — {winery}", "{name} from {region}")


def test_titles_and_text_render_from_templates():
    c = catalog()
    assert c.titles() == ["Malbec — Alta", "Malbec — Baja"]
    assert c.render() == ["Malbec from Mendoza", "Malbec from "]
    assert c.render("{winery}", [1]) == ["Baja"]


def test_aligned_to_reorders_and_blanks_missing_items():
    aligned = catalog().aligned_to(np.array(["w2", "w9", "w1"], dtype=object))
    assert aligned.titles() == ["Malbec — Baja", " — ", "Malbec — Alta"]
    assert aligned.text_coverage() == pytest.approx(2 / 3)


def test_template_with_unknown_field_is_refused():
    frame = pd.DataFrame({"id": ["a"], "title": ["A"]})
    with pytest.raises(DataError, match="unknown field"):
        ItemCatalog.from_frame(frame, "id", "{name}")


def test_duplicate_item_ids_in_a_catalogue_are_refused():
    frame = pd.DataFrame({"id": ["a", "a"], "title": ["A", "B"]})
    with pytest.raises(DataError, match="duplicate item ids"):
        ItemCatalog.from_frame(frame, "id", "{title}")
