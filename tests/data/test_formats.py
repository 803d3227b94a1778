"""File-format readers: each on a small hand-written fixture in its real format, its malformed
variants (errors name the file and line), and gzip transparency."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semrec.data import Dataset, Part
from semrec.data.formats._io import read_delimited, read_int_lines
from semrec.data.formats.dealrec import read_dealrec
from semrec.data.formats.generic import read_item_table, read_table
from semrec.data.formats.lcrec import read_lcrec
from semrec.data.formats.lightgcn import read_lightgcn
from semrec.data.formats.llara import read_llara
from semrec.data.formats.movielens import read_movielens_100k
from semrec.data.formats.p5 import read_p5
from semrec.data.formats.recbole import read_atomic, read_recbole
from semrec.errors import DataError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "formats"
TRAIN, VALID, TEST = int(Part.TRAIN), int(Part.VALID), int(Part.TEST)


def copy_fixture(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def raises_at(file_name: str, detail: str = ""):
    """Expect a DataError whose message names ``file_name`` (and then ``detail``)."""
    pattern = re.escape(file_name) + (r"\b.*" + re.escape(detail) if detail else "")
    return pytest.raises(DataError, match=pattern)


def sequences_by_id(dataset: Dataset) -> dict[str, list[str]]:
    x = dataset.interactions
    return {x.user_ids[u]: x.item_ids[items].tolist() for u, items in enumerate(x.sequences())}


def parts_by_user(dataset: Dataset) -> dict[str, list[int]]:
    x = dataset.interactions
    ordered_parts = dataset.given_parts[x.time_order]
    ordered_users = x.user_index[x.time_order]
    return {x.user_ids[u]: ordered_parts[ordered_users == u].tolist() for u in range(x.n_users)}


def field(dataset: Dataset, item_id: str, name: str) -> str:
    catalog = dataset.catalog
    return catalog.fields[name].iloc[int(dataset.interactions.item_index_of([item_id])[0])]


def title(dataset: Dataset, item_id: str) -> str:
    return dataset.catalog.titles(dataset.interactions.item_index_of([item_id]))[0]


# --- shared helpers -------------------------------------------------------------------------
def test_int_lines_parse_whitespace_and_line_numbers(tmp_path):
    path = write(tmp_path / "x.txt", "3 1  2\r\n\n7\t9\n10\n")
    lines = read_int_lines(path)
    assert lines.heads.tolist() == [3, 7, 10]
    assert lines.counts.tolist() == [2, 1, 0]
    assert lines.values.tolist() == [1, 2, 9]
    assert lines.line_numbers.tolist() == [1, 3, 4]
    with raises_at("y.txt", "line 2: expected non-negative integers"):
        read_int_lines(write(tmp_path / "y.txt", "1 2\n3 -4\n"))


def test_delimited_checks_field_counts(tmp_path):
    names, frame, lines = read_delimited(
        write(tmp_path / "a.tsv", "k\tv\n\nx\t1\ny\t\n"), "\t", header=True
    )
    assert names == ["k", "v"]
    assert frame.values.tolist() == [["x", "1"], ["y", ""]]
    assert lines.tolist() == [3, 4]
    with raises_at("b.tsv", "line 3: expected 2 '\\t'-separated fields"):
        read_delimited(write(tmp_path / "b.tsv", "k\tv\nx\t1\ny\t2\t3\n"), "\t", header=True)
    with raises_at("c.tsv", "duplicate column name"):
        read_delimited(write(tmp_path / "c.tsv", "k\tk\nx\t1\n"), "\t", header=True)
    with raises_at("d.tsv", "empty file"):
        read_delimited(write(tmp_path / "d.tsv", "\n\n"), "\t")


# --- LightGCN -------------------------------------------------------------------------------
def test_lightgcn_given_split_and_index_equals_id():
    dataset = read_lightgcn(FIXTURES / "lightgcn", "toy")
    x = dataset.interactions
    assert dataset.name == "toy"
    # user_list.txt / item_list.txt size the vocabularies: user 3 (empty line) and user 4 and
    # item 6 (never used) still exist, and index == id
    assert x.user_ids.tolist() == ["0", "1", "2", "3", "4"]
    assert x.item_ids.tolist() == ["0", "1", "2", "3", "4", "5", "6"]
    assert x.to_frame().values.tolist() == [
        ["0", "0"], ["0", "1"], ["0", "2"], ["1", "2"], ["1", "3"], ["2", "4"],
        ["0", "3"], ["1", "0"], ["1", "4"], ["2", "1"],
    ]  # fmt: skip
    assert dataset.given_parts.tolist() == [TRAIN] * 6 + [TEST] * 4
    assert x.user_counts().tolist() == [4, 4, 2, 0, 0]
    assert dataset.catalog is None
    assert x.rating is None and x.timestamp is None


def test_lightgcn_without_id_lists_sizes_vocabularies_from_the_files(tmp_path):
    folder = copy_fixture("lightgcn", tmp_path)
    (folder / "user_list.txt").unlink()
    (folder / "item_list.txt").unlink()
    x = read_lightgcn(folder).interactions
    assert (x.n_users, x.n_items, len(x)) == (4, 5, 10)


@pytest.mark.parametrize(
    ("file_name", "text", "detail"),
    [
        ("train.txt", "0 0 1 2\n1 2 x\n", "line 2: expected non-negative integers"),
        ("train.txt", "0 0 1\n1 2\n0 3\n", "line 3: user 0 is already listed on line 1"),
        ("test.txt", "", "empty file"),
        ("test.txt", "\n  \n", "empty file"),
        ("user_list.txt", "org_id remap_id\n9001 0\n9002\n", "line 3: expected 2"),
        ("user_list.txt", "org_id org_id\n9001 0\n", "line 1: duplicate column name"),
        ("item_list.txt", "org_id remap_id\n51 zero\n", "line 2: remap_id must be"),
        ("item_list.txt", "org_id remap_id\n51 0\n", "lists 1 items"),
    ],
)
def test_lightgcn_malformed(tmp_path, file_name, text, detail):
    folder = copy_fixture("lightgcn", tmp_path)
    write(folder / file_name, text)
    with raises_at(file_name, detail):
        read_lightgcn(folder)


def test_lightgcn_missing_file(tmp_path):
    folder = copy_fixture("lightgcn", tmp_path)
    (folder / "test.txt").unlink()
    with raises_at("test.txt", "file not found"):
        read_lightgcn(folder)


# --- P5 -------------------------------------------------------------------------------------
def test_p5_beauty_sequences_asins_titles_categories():
    dataset = read_p5(FIXTURES / "p5_beauty", "beauty")
    x = dataset.interactions
    assert (x.n_users, x.n_items, len(x)) == (3, 7, 10)
    assert sequences_by_id(dataset) == {
        "1": ["1", "2", "3", "4", "5"],
        "2": ["6", "2", "7"],
        "3": ["3", "1"],
    }
    assert dataset.given_parts is None and x.timestamp is None
    assert list(dataset.catalog.fields.columns) == ["asin", "title", "categories"]
    assert field(dataset, "1", "asin") == "B0FAKE0001"
    assert title(dataset, "3") == "Rose Water Facial Mist"
    assert field(dataset, "3", "categories") == "Beauty > Skin Care > Face; Beauty > Fragrance"
    assert field(dataset, "5", "categories") == ""
    assert dataset.catalog.render(item_index=x.item_index_of(["4"])) == [
        "Argan Hair Oil. Beauty > Hair Care"
    ]


def test_p5_yelp_letter_text_is_zero_based_and_repeats_are_kept():
    dataset = read_p5(FIXTURES / "p5_yelp", "yelp", id_field="business_id")
    x = dataset.interactions
    assert sequences_by_id(dataset) == {"1": ["1", "2", "1", "3"], "2": ["4", "4", "2"]}
    assert (len(x), x.user_items.nnz) == (7, 5)
    assert title(dataset, "1") == "Corner Noodle Bar"  # LETTER key "0" = P5 id 1
    assert field(dataset, "4", "business_id") == "bizD"
    assert field(dataset, "2", "description") == "Bakeries, Food"


def test_p5_sports_keywords_are_a_field_not_a_title():
    dataset = read_p5(FIXTURES / "p5_sports", "sports")
    catalog = dataset.catalog
    assert "title" not in catalog.fields
    assert list(catalog.fields.columns) == ["asin", "keywords"]
    assert title(dataset, "2") == "B0SPORT002"  # the display title is the ASIN
    assert catalog.render(item_index=dataset.interactions.item_index_of(["3"])) == [
        "yoga mat cork grip"
    ]
    assert sequences_by_id(dataset) == {"1": ["1", "2", "3"], "2": ["3", "1"]}


@pytest.mark.parametrize(
    ("file_name", "text", "detail"),
    [
        ("sequential.txt", "1 1 2\n2 0 3\n", "line 2: item id 0, but ids are 1-based"),
        ("sequential.txt", "1 1 2\n2 B0FAKE0001\n", "line 2: expected non-negative integers"),
        ("sequential.txt", "1 1 2\n1 3\n", "line 2: user 1 is already listed on line 1"),
        ("sequential.txt", "", "empty file"),
        ("sequential.txt", "1 1 9\n", "missing from datamaps.json"),
        ("datamaps.json", '{"id2item": {"1": "B0FAKE0001",\n "2" "x"}}', "line 2 column"),
        ("datamaps.json", '{"id2user": {}}', "expected a JSON object with an 'id2item'"),
        (
            "Toys.item_text.jsonl",
            '{"item_id": 1, "title": "a"}\n{"item_id": 2}\n',
            "line 2: missing key 'title'",
        ),
        (
            "Toys.item_text.jsonl",
            '{"item_id": 1, "title": "a"}\n[1, 2]\n',
            "line 2: expected a JSON object",
        ),
        (
            "Toys.item_text.jsonl",
            '{"item_id": "one", "title": "a"}\n',
            "line 1: 'item_id' must be an integer",
        ),
        (
            "Toys.item_text.jsonl",
            '{"item_id": 1, "asin": "B0OTHER", "title": "a"}\n',
            "item 1 has asin 'B0OTHER'",
        ),
        (
            "Toys.item_text.jsonl",
            '{"item_id": 1, "title": "a"}\n{"item_id": 1, "title": "b"}\n',
            "item 1 is described twice",
        ),
    ],
)
def test_p5_malformed(tmp_path, file_name, text, detail):
    folder = copy_fixture("p5_beauty", tmp_path)
    write(folder / file_name, text)
    with raises_at(file_name, detail):
        read_p5(folder)


def test_p5_without_sequence_file_names_the_expected_files(tmp_path):
    folder = copy_fixture("p5_beauty", tmp_path)
    (folder / "sequential.txt").unlink()
    with raises_at("p5_beauty", "expected one of ['sequential.txt', 'sequential_data.txt']"):
        read_p5(folder)


# --- RecBole --------------------------------------------------------------------------------
def test_recbole_plain_inter_and_item_features():
    dataset = read_recbole(FIXTURES / "recbole_plain")
    x = dataset.interactions
    assert dataset.name == "Toy"
    assert x.user_ids.tolist() == ["2", "10"]  # integer tokens sort numerically
    assert x.item_ids.tolist() == ["3", "7", "12"]
    assert x.rating.tolist() == [4.0, 5.0, 3.5, 1.0]
    assert x.timestamp.tolist() == [1000, 900, 1200, 1100]
    assert sequences_by_id(dataset) == {"2": ["12", "7"], "10": ["3", "7"]}  # by timestamp
    assert dataset.given_parts is None
    assert dataset.catalog.title_template == "{movie_title}"
    assert title(dataset, "7") == 'Night Ferry "Express"'  # no quote processing
    assert field(dataset, "7", "class") == "Thriller Action"


def test_recbole_unisrec_rebuilds_sequences_and_leave_one_out_parts():
    dataset = read_recbole(FIXTURES / "recbole_unisrec", "lab", id_field="asin")
    x = dataset.interactions
    assert (x.n_users, x.n_items, len(x)) == (3, 10, 14)
    # train rows are shuffled and windows are truncated to 3 items: chained back together
    assert sequences_by_id(dataset) == {
        "0": ["0", "1", "2", "3", "4", "5", "6"],
        "1": ["7", "2", "8", "7"],
        "2": ["9", "0", "1"],
    }
    assert parts_by_user(dataset) == {
        "0": [TRAIN] * 5 + [VALID, TEST],
        "1": [TRAIN, TRAIN, VALID, TEST],
        "2": [TRAIN, VALID, TEST],
    }
    assert field(dataset, "4", "asin") == "LABFAKE004"
    assert title(dataset, "4").startswith("3D Printer Filament PLA 1.75mm 1kg.")
    assert field(dataset, "9", "text") == ""  # LABFAKE009 has no line in Lab.text


def test_recbole_benchmark_files_without_histories(tmp_path):
    header = "user_id:token\titem_id:token\n"
    write(tmp_path / "B.train.inter", header + "u1\ta\nu1\tb\nu2\ta\n")
    write(tmp_path / "B.valid.inter", header + "u1\tc\n")
    write(tmp_path / "B.test.inter", header + "u2\tc\n")
    dataset = read_recbole(tmp_path)
    assert dataset.given_parts.tolist() == [TRAIN, TRAIN, TRAIN, VALID, TEST]
    assert sequences_by_id(dataset) == {"u1": ["a", "b", "c"], "u2": ["a", "c"]}


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("user_id\titem_id:token\n1\t2\n", "line 1: header cell 'user_id' must be name:type"),
        ("user_id:token\titem_id:blob\n1\t2\n", "header cell 'item_id:blob'"),
        ("user_id:token\tuser_id:float\n1\t2\n", "line 1: duplicate field 'user_id'"),
        ("user_id:token\titem_id:token\n1\t2\n3\t4\t5\n", "line 3: expected 2"),
        (
            "user_id:token\titem_id:token\trating:float\n1\t2\t5\n1\t3\tgood\n",
            "line 3: field 'rating' must be a number",
        ),
        ("", "empty file"),
        ("user_id:token\trating:float\n1\t2\n", "missing field(s) ['item_id']"),
    ],
)
def test_recbole_malformed_inter(tmp_path, text, detail):
    write(tmp_path / "Bad.inter", text)
    with raises_at("Bad.inter", detail):
        read_recbole(tmp_path)


HISTORY_HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


@pytest.mark.parametrize(
    ("file_name", "text", "detail"),
    [
        (
            "Lab.valid.inter",
            HISTORY_HEADER + "0\t2 3 4\t5\n1\t7 3\t8\n2\t9\t0\n",
            "contradicts",
        ),
        (
            "Lab.valid.inter",
            HISTORY_HEADER + "0\t2 3 9\t5\n1\t7 2\t8\n2\t9\t0\n",
            "do not form one chain",
        ),
        (
            "Lab.valid.inter",
            HISTORY_HEADER + "0\t2 3 4\t5\n2\t9\t0\n",
            "rows of user 1 do not form one sequence (no row for position 2)",
        ),
        (
            "Lab.test.inter",
            HISTORY_HEADER + "0\t\t6\n",
            "line 2: empty 'item_id_list'",
        ),
        ("Lab.item2index", "LABFAKE000\t0\nLABFAKE001\n", "line 2: expected 2"),
    ],
)
def test_recbole_unisrec_malformed(tmp_path, file_name, text, detail):
    folder = copy_fixture("recbole_unisrec", tmp_path)
    write(folder / file_name, text)
    with pytest.raises(DataError, match=re.escape(detail)) as error:
        read_recbole(folder)
    assert "Lab." in str(error.value)


def test_read_atomic_returns_types_and_lines(tmp_path):
    frame, types, lines = read_atomic(
        write(tmp_path / "x.item", "item_id:token\ttitle:token_seq\n\n7\tA B\n")
    )
    assert types == {"item_id": "token", "title": "token_seq"}
    assert frame.values.tolist() == [["7", "A B"]]
    assert lines.tolist() == [3]


# --- LC-Rec ---------------------------------------------------------------------------------
def test_lcrec_sequences_and_text():
    dataset = read_lcrec(FIXTURES / "lcrec")
    x = dataset.interactions
    assert dataset.name == "Kit"
    assert (x.n_users, x.n_items, len(x)) == (4, 6, 14)
    assert sequences_by_id(dataset)["3"] == ["5", "4", "3", "2", "1"]
    assert sequences_by_id(dataset)["1"] == ["4", "2", "5"]
    assert field(dataset, "1", "asin") == "B0KITFAKE1"
    assert title(dataset, "1") == "Space Miners - PC"
    assert field(dataset, "1", "categories") == "Video Games > PC > Games"
    assert field(dataset, "2", "categories") == ""  # null in the file
    assert list(dataset.catalog.fields.columns) == ["asin", "title", "categories"]


def test_lcrec_without_text_titles_are_asins(tmp_path):
    folder = copy_fixture("lcrec", tmp_path)
    (folder / "Kit.item_text.jsonl").unlink()
    dataset = read_lcrec(folder, "kit")
    assert list(dataset.catalog.fields.columns) == ["asin"]
    assert title(dataset, "5") == "B0KITFAKE5"


@pytest.mark.parametrize(
    ("file_name", "text", "detail"),
    [
        ("Kit.inter.json", '{"0": [0, 1],\n "1": 4}', "user '1' must map to a list"),
        (
            "Kit.inter.json",
            '{"0": [0, 1], "1": [2, "B0KITFAKE3"]}',
            "user '1' has a non-integer item index",
        ),
        ("Kit.inter.json", '{"0": [0, 1],\n\n "1": [2,, 3]}', "line 3 column"),
        ("Kit.inter.json", '{"zero": [0, 1]}', "user key 'zero' is not an integer"),
        ("Kit.inter.json", "", "empty file"),
        ("Kit.item2id", "B0KITFAKE0\t0\nB0KITFAKE1\t1\tx\n", "line 2: expected 2"),
        ("Kit.item2id", "B0KITFAKE0\t0\nB0KITFAKE1\tone\n", "line 2: 'index' must be an integer"),
        (
            "Kit.item2id",
            "B0KITFAKE0\t0\n",
            "has no raw id for 5 item index(es) used in Kit.inter.json",
        ),
        (
            "Kit.item_text.jsonl",
            '{"item_idx": 0, "asin": "B0X", "title": "a"}\n',
            "item 0 has asin 'B0X'",
        ),
        (
            "Kit.item_text.jsonl",
            '{"item_idx": 0, "title": "a"}\n{"title": "b"}\n',
            "line 2: missing key 'item_idx'",
        ),
    ],
)
def test_lcrec_malformed(tmp_path, file_name, text, detail):
    folder = copy_fixture("lcrec", tmp_path)
    write(folder / file_name, text)
    with raises_at(file_name, detail):
        read_lcrec(folder)


# --- MovieLens 100K -------------------------------------------------------------------------
def test_movielens_ratings_times_titles_genres():
    dataset = read_movielens_100k(FIXTURES / "movielens", "ml")
    x = dataset.interactions
    assert (x.n_users, x.n_items, len(x)) == (3, 4, 6)
    assert x.item_ids.tolist() == ["10", "20", "30", "40"]  # unrated movie 50 is dropped
    assert x.rating.tolist() == [4, 3, 5, 1, 2, 4]
    assert x.timestamp[:2].tolist() == [880000300, 880000100]
    assert sequences_by_id(dataset)["1"] == ["20", "10"]  # time order
    assert title(dataset, "20") == "Café at Midnight (1996)"  # latin-1
    assert field(dataset, "10", "genres") == "Animation, Comedy"
    assert field(dataset, "40", "genres") == "unknown"
    assert dataset.catalog.render(item_index=x.item_index_of(["30"])) == [
        "Iron Orchard (1995). Genres: Action, Thriller."
    ]


def test_movielens_without_genre_file_uses_the_standard_list(tmp_path):
    folder = copy_fixture("movielens", tmp_path)
    (folder / "u.genre").unlink()
    assert field(read_movielens_100k(folder), "20", "genres") == "Drama, Romance"


@pytest.mark.parametrize(
    ("file_name", "text", "detail"),
    [
        ("u.data", "1\t10\t4\t880000300\n1\t20\t3\n", "line 2: expected 4 fields"),
        ("u.data", "1\tten\t4\t880000300\n", "line 1: expected non-negative integers"),
        ("u.data", "", "empty file"),
        ("u.data", "1\t99\t4\t880000300\n", "missing from u.item"),
        ("u.item", "10|Paper Boats (1994)|01-Jan-1994||url|0|0\n", "line 1: expected 24"),
        ("u.item", "ten|T|||u" + "|0" * 19 + "\n", "line 1: 'movie_id' must be an integer"),
        ("u.item", "10|T|||u|2" + "|0" * 18 + "\n", "line 1: genre flag 'unknown' must be 0 or 1"),
        ("u.genre", "unknown|0\nAction|2\n", "genre indices must be 0..1"),
    ],
)
def test_movielens_malformed(tmp_path, file_name, text, detail):
    folder = copy_fixture("movielens", tmp_path)
    write(folder / file_name, text)
    with raises_at(file_name, detail):
        read_movielens_100k(folder)


# --- DEALRec --------------------------------------------------------------------------------
def test_dealrec_given_split_and_users_without_interactions():
    dataset = read_dealrec(FIXTURES / "dealrec", "games")
    x = dataset.interactions
    assert (x.n_users, x.n_items, len(x)) == (5, 6, 12)
    assert x.user_counts().tolist() == [5, 3, 3, 1, 0]  # user 5 is listed but has nothing
    assert np.bincount(dataset.given_parts).tolist() == [6, 2, 4]
    assert sequences_by_id(dataset)["1"] == ["1", "2", "3", "4", "5"]
    assert parts_by_user(dataset)["1"] == [TRAIN, TRAIN, TRAIN, VALID, TEST]
    assert parts_by_user(dataset)["3"] == [VALID, TEST, TEST]
    assert title(dataset, "5") == "Castle Siege"
    assert field(dataset, "1", "asin") == "B0DEALFK01"
    assert "rec_item_id" not in dataset.catalog.fields
    assert dataset.catalog.render(item_index=x.item_index_of(["2"])) == [
        "Arcade Stick. Video Games > Accessories"
    ]


@pytest.mark.parametrize(
    ("file_name", "text", "detail"),
    [
        ("sequential_train.txt", "1 1 2\n2 x\n", "line 2: expected non-negative integers"),
        ("sequential_valid.txt", "1 4\n1 5\n", "line 2: user 1 is already listed on line 1"),
        ("sequential_test.txt", "1 0\n", "line 1: item id 0, but ids are 1-based"),
        ("sequential_test.txt", "", "empty file"),
        (
            "items.jsonl",
            '{"seq_item_id": 1, "title": "a"}\n{"seq_item_id": 2}\n',
            "line 2: missing key 'title'",
        ),
        (
            "items.jsonl",
            '{"seq_item_id": 1, "title": "a"}\n{"seq_item_id": 1, "title": "b"}\n',
            "line 2: item 1 is listed twice",
        ),
    ],
)
def test_dealrec_malformed(tmp_path, file_name, text, detail):
    folder = copy_fixture("dealrec", tmp_path)
    write(folder / file_name, text)
    with raises_at(file_name, detail):
        read_dealrec(folder)


def test_dealrec_item_missing_from_items_file(tmp_path):
    folder = copy_fixture("dealrec", tmp_path)
    write(folder / "sequential_test.txt", "1 9\n")
    with raises_at("items.jsonl", "e.g. [9]"):
        read_dealrec(folder)


# --- LLaRA ----------------------------------------------------------------------------------
def test_llara_rebuilds_one_sequence_per_user_split_by_user():
    dataset = read_llara(FIXTURES / "llara", "lastfm")
    x = dataset.interactions
    assert (x.n_users, x.n_items, len(x)) == (4, 6, 12)
    assert sequences_by_id(dataset) == {
        "0": ["0", "1", "2", "3", "4"],
        "1": ["2", "0"],
        "2": ["5", "1"],
        "3": ["3", "5", "4"],
    }
    assert parts_by_user(dataset) == {
        "0": [TRAIN] * 5,
        "1": [TRAIN] * 2,
        "2": [VALID] * 2,
        "3": [TEST] * 3,
    }
    assert title(dataset, "5") == "Café Quartet"


START = '{"seq": [6, 6, 6], "len_seq": 1, "next": 0}\n'
START_5 = '{"seq": [6, 6, 6], "len_seq": 1, "next": 5}\n'


@pytest.mark.parametrize(
    ("file_name", "text", "detail"),
    [
        (
            "train.jsonl",
            START + '{"seq": [1, 6, 6], "len_seq": 1, "next": 1}\n',
            "line 2: 'seq' ends with 1 but the previous sample's 'next' is 0",
        ),
        (
            "train.jsonl",
            '{"seq": [0, 6, 6], "len_seq": 1, "next": 1}\n',
            "line 1: the first sample must start a user",
        ),
        (
            "train.jsonl",
            START + '{"seq": [0, 6, 6], "len_seq": 2, "next": 1}\n',
            "line 2: len_seq 2",
        ),
        (
            "train.jsonl",
            START + '{"seq": [0, 6], "len_seq": 1, "next": 1}\n',
            "line 2: 'seq' must be a list as long as",
        ),
        (
            "valid.jsonl",
            START_5 + '{"seq": [5, 6, 6], "len_seq": 1, "next": 1\n',
            "line 2: invalid JSON",
        ),
        (
            "valid.jsonl",
            '{"seq": [6, 6, 6], "len_seq": 1, "next": "five"}\n',
            "line 1: 'next' must be an integer",
        ),
        ("test.jsonl", "", "empty file"),
        ("id2name.tsv", "0\tMorning Static\n1\n", "line 2: expected 2"),
    ],
)
def test_llara_malformed(tmp_path, file_name, text, detail):
    folder = copy_fixture("llara", tmp_path)
    write(folder / file_name, text)
    with raises_at(file_name, detail):
        read_llara(folder)


# --- generic tables -------------------------------------------------------------------------
def test_csv_with_datetime_strings_and_item_table():
    items = read_item_table(FIXTURES / "generic" / "items.csv", "item_id", "{title} ({brand})")
    dataset = read_table(
        FIXTURES / "generic" / "interactions.csv",
        rating_column="rating",
        timestamp_column="timestamp",
        catalog=items,
    )
    x = dataset.interactions
    assert dataset.name == "interactions"
    assert x.user_ids.tolist() == ["alice", "bob", "carol"]
    assert x.timestamp.tolist() == [1614592800, 1614673800, 1614503700, 1614945600]
    assert x.rating.tolist() == [4.5, 3.0, 5.0, 2.0]
    assert sequences_by_id(dataset)["alice"] == ["sku-1", "sku-2"]
    assert title(dataset, "sku-1") == "Steel Water Bottle, 1 L (Hydra)"
    assert len(dataset.catalog) == 3  # the unused sku-9 is dropped


def test_tsv_with_own_column_names():
    dataset = read_table(
        FIXTURES / "generic" / "ratings.tsv", "user", "movie", "score", "ts", name="r"
    )
    x = dataset.interactions
    assert x.user_ids.tolist() == ["1", "3"]
    assert x.item_ids.tolist() == ["20", "100"]
    assert x.timestamp.tolist() == [1500, 1000, 1200]


def test_jsonl_and_parquet(tmp_path):
    jsonl = read_table(FIXTURES / "generic" / "events.jsonl", "uid", "iid", timestamp_column="when")
    assert jsonl.interactions.to_frame().values.tolist() == [
        ["7", "x9", 1700000000],
        ["5", "x1", 1700000100],
        ["7", "x1", 1700000200],
    ]
    frame = pd.DataFrame(
        {
            "user_id": [3, 1],
            "item_id": ["a", "b"],
            "when": pd.to_datetime(["2020-01-01", "2020-01-02"]),
        }
    )
    frame.to_parquet(tmp_path / "t.parquet")
    parquet = read_table(tmp_path / "t.parquet", timestamp_column="when")
    assert parquet.interactions.timestamp.tolist() == [1577836800, 1577923200]
    assert parquet.interactions.user_ids.tolist() == ["1", "3"]


@pytest.mark.parametrize(
    ("file_name", "text", "kwargs", "detail"),
    [
        ("a.xlsx", "x", {}, "accepted formats: ['csv', 'tsv', 'parquet', 'jsonl']"),
        ("a.csv", "user_id,item_id\n1,2\n", {"format": "excel"}, "unknown format 'excel'"),
        ("a.csv", "", {}, "empty file"),
        ("a.csv", "user_id,user_id\n1,2\n", {}, "line 1: duplicate column name"),
        ("a.csv", "user,item_id\n1,2\n", {}, "missing column(s) ['user_id']"),
        ("a.csv", "user_id,item_id\n1,2\n3,4,5\n", {}, "line 3"),
        (
            "a.csv",
            "user_id,item_id,rating\n1,2,4\n1,3,good\n",
            {"rating_column": "rating"},
            "line 3: column 'rating' must be a number",
        ),
        (
            "a.csv",
            "user_id,item_id,t\n1,2,2020-01-01\n1,3,soon\n",
            {"timestamp_column": "t"},
            "line 3: column 't' must be unix seconds or a date-time",
        ),
        ("a.csv", "user_id,item_id\n1,2\n,3\n", {}, "line 3: no value in id column 'user_id'"),
        ("a.jsonl", '{"user_id": 1, "item_id": 2}\n{"user_id": 1,\n', {}, "line 2: invalid JSON"),
        (
            "a.jsonl",
            '{"user_id": 1, "item_id": 2}\n\n{"item_id": 3}\n',
            {},
            "line 3: no value in id column 'user_id'",
        ),
    ],
)
def test_generic_malformed(tmp_path, file_name, text, kwargs, detail):
    with raises_at(file_name, detail):
        read_table(write(tmp_path / file_name, text), **kwargs)


def test_generic_missing_file(tmp_path):
    with raises_at("nope.csv", "file not found"):
        read_table(tmp_path / "nope.csv")


def test_item_table_rejects_duplicate_items(tmp_path):
    path = write(tmp_path / "items.csv", "item_id,title\na,A\nb,B\na,C\n")
    with raises_at("items.csv", "line 4: item 'a' is listed twice"):
        read_item_table(path)


# --- gzip transparency ----------------------------------------------------------------------
READERS = {
    "lightgcn": read_lightgcn,
    "p5_beauty": read_p5,
    "p5_yelp": read_p5,
    "p5_sports": read_p5,
    "recbole_plain": read_recbole,
    "recbole_unisrec": read_recbole,
    "lcrec": read_lcrec,
    "movielens": read_movielens_100k,
    "dealrec": read_dealrec,
    "llara": read_llara,
}


def gzip_folder(folder: Path) -> None:
    for path in folder.iterdir():
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()


@pytest.mark.parametrize("fixture", sorted(READERS))
def test_gzipped_files_read_the_same(tmp_path, fixture):
    reader = READERS[fixture]
    plain = reader(FIXTURES / fixture, "x")
    folder = copy_fixture(fixture, tmp_path)
    gzip_folder(folder)
    assert all(p.suffix == ".gz" for p in folder.iterdir())
    packed = reader(folder, "x")
    assert packed.interactions.fingerprint() == plain.interactions.fingerprint()
    assert np.array_equal(packed.interactions.time_order, plain.interactions.time_order)
    if plain.given_parts is None:
        assert packed.given_parts is None
    else:
        assert packed.given_parts.tolist() == plain.given_parts.tolist()
    if plain.catalog is not None:
        pd.testing.assert_frame_equal(packed.catalog.fields, plain.catalog.fields)


def test_gzipped_table(tmp_path):
    source = FIXTURES / "generic" / "interactions.csv"
    packed = tmp_path / "interactions.csv.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    a = read_table(source, timestamp_column="timestamp").interactions
    b = read_table(packed, timestamp_column="timestamp").interactions
    assert a.fingerprint() == b.fingerprint()
    assert a.timestamp.tolist() == b.timestamp.tolist()


def test_corrupt_gzip_names_the_file(tmp_path):
    folder = copy_fixture("dealrec", tmp_path)
    (folder / "sequential_train.txt").unlink()
    (folder / "sequential_train.txt.gz").write_bytes(b"not gzip at all")
    with raises_at("sequential_train.txt.gz", "cannot read"):
        read_dealrec(folder)
