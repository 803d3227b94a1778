"""Named data sets: resolution order, missing-data messages, path loading, and (where the
benchmark files are present) the statistics of every registered data set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from semrec.data import Dataset, Part, registry
from semrec.data.registry import (
    REGISTRY,
    available_datasets,
    find_data_dir,
    load_dataset,
    locate_dataset,
)
from semrec.errors import DataError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "formats"


@pytest.fixture
def isolated(monkeypatch, tmp_path) -> Path:
    """No default data roots: the current folder is empty and there is no source checkout."""
    workdir = tmp_path / "work" / "here"
    workdir.mkdir(parents=True)
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(registry, "_repository_root", lambda: None)
    return tmp_path


def make_root(base: Path, **folders: str) -> Path:
    """A data root holding copies of fixture folders: ``folder_name=fixture_name``."""
    base.mkdir(parents=True, exist_ok=True)
    for folder, fixture in folders.items():
        shutil.copytree(FIXTURES / fixture, base / folder.replace("_", "-"))
    return base


# --- where data is looked for ---------------------------------------------------------------
def test_roots_in_order_explicit_env_cwd_checkout(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    explicit, first_env, second_env = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    roots = find_data_dir(explicit, f"{first_env}{os.pathsep}{second_env}")
    checkout = Path(registry.__file__).resolve().parents[3]
    assert roots == [
        explicit,
        first_env,
        second_env,
        (tmp_path / ".." / "shared" / "data").resolve(),
        (checkout.parent / "shared" / "data").resolve(),
    ]


def test_roots_are_deduplicated_and_need_not_exist(isolated):
    same = isolated / "data"
    roots = find_data_dir(same, str(same))
    assert roots == [same, (Path.cwd() / ".." / "shared" / "data").resolve()]
    assert not same.exists()


def test_explicit_dir_wins_over_env(isolated):
    explicit = make_root(isolated / "explicit", gowalla="lightgcn")
    env = make_root(isolated / "env", gowalla="lightgcn")
    (env / "gowalla" / "user_list.txt").unlink()  # the env copy would have 4 users, not 5
    assert locate_dataset("gowalla", explicit, str(env)) == explicit / "gowalla"
    assert load_dataset("gowalla", explicit, str(env)).interactions.n_users == 5
    assert load_dataset("gowalla", None, str(env)).interactions.n_users == 4


def test_incomplete_folder_is_skipped_for_a_later_complete_one(isolated):
    explicit = make_root(isolated / "explicit", gowalla="lightgcn")
    (explicit / "gowalla" / "test.txt").unlink()
    env = make_root(isolated / "env", gowalla="lightgcn")
    assert locate_dataset("gowalla", explicit, str(env)) == env / "gowalla"


def test_cwd_relative_shared_data_is_searched(isolated):
    make_root(isolated / "work" / "shared" / "data", gowalla="lightgcn")
    dataset = load_dataset("gowalla")
    assert dataset.name == "gowalla"
    assert np.bincount(dataset.given_parts).tolist() == [6, 0, 4]


def test_missing_dataset_names_files_directories_and_how_to_fix(isolated):
    explicit = isolated / "nowhere"
    env = make_root(isolated / "env", gowalla="lightgcn")
    (env / "gowalla" / "test.txt").unlink()
    with pytest.raises(DataError) as error:
        load_dataset("gowalla", explicit, str(env))
    message = str(error.value)
    assert "data set 'gowalla' not found" in message
    assert "train.txt, test.txt" in message
    assert f"{explicit / 'gowalla'}  (--data-dir): no such folder" in message
    assert f"{env / 'gowalla'}  (SEMREC_DATA): missing test.txt" in message
    assert str((Path.cwd() / ".." / "shared" / "data" / "gowalla").resolve()) in message
    assert "--data-dir" in message and "SEMREC_DATA" in message


def test_unknown_and_incomplete_names(isolated):
    with pytest.raises(DataError, match="unknown data set 'netflix'; registered names: xwines"):
        load_dataset("netflix")
    with pytest.raises(
        DataError, match=r"'yelp2018' cannot be loaded: only the LightGCN test\.txt"
    ):
        load_dataset("yelp2018")
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset("data/ratings.csv")


def test_available_datasets(isolated):
    assert available_datasets() == ["xwines"]
    root = make_root(isolated / "root", gowalla="lightgcn", ml_100k="movielens")
    assert available_datasets(root) == ["xwines", "gowalla", "ml-100k"]


def test_folder_name_is_an_alias(isolated):
    root = make_root(isolated / "root", amazon_beauty_p5="p5_beauty")
    folder = root / "amazon-beauty-p5"
    (folder / "Toys.item_text.jsonl").rename(folder / "Beauty.item_text.jsonl")
    dataset = load_dataset("amazon-beauty-p5", root)
    assert dataset.name == "amazon-beauty"
    assert len(dataset.interactions) == 10


def test_every_spec_names_its_files_and_a_description():
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.files and spec.description
        assert spec.bundled or spec.folder
    assert set(REGISTRY) >= {
        "xwines", "gowalla", "ml-100k", "amazon-beauty", "amazon-sports", "amazon-scientific",
        "yelp", "amazon-instruments", "amazon-games", "amazon-games-dealrec", "microlens-50k",
        "lastfm",
    }  # fmt: skip


# --- loading paths --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "n_interactions"),
    [
        ("lightgcn", 10),
        ("p5_beauty", 10),
        ("p5_yelp", 7),
        ("recbole_plain", 4),
        ("recbole_unisrec", 14),
        ("lcrec", 14),
        ("movielens", 6),
        ("dealrec", 12),
        ("llara", 12),
        ("xwines", 1000),
    ],
)
def test_folder_format_is_detected(fixture, n_interactions):
    dataset = load_dataset(str(FIXTURES / fixture))
    assert len(dataset.interactions) == n_interactions
    assert dataset.name == fixture


def test_table_path_with_columns_and_format(tmp_path):
    dataset = load_dataset(
        FIXTURES / "generic" / "ratings.tsv",
        columns={"user": "user", "item": "movie", "rating": "score", "timestamp": None},
    )
    assert dataset.name == "ratings"
    assert dataset.interactions.rating.tolist() == [4.0, 5.0, 2.0]
    renamed = tmp_path / "ratings.data"
    shutil.copy(FIXTURES / "generic" / "interactions.csv", renamed)
    assert len(load_dataset(renamed, format="csv").interactions) == 4
    with pytest.raises(DataError, match="accepted formats"):
        load_dataset(renamed)


def test_file_of_a_folder_format_loads_its_folder():
    dataset = load_dataset(FIXTURES / "movielens" / "u.data", format="movielens-100k")
    assert len(dataset.interactions) == 6


def test_undetectable_folder_lists_known_formats(tmp_path):
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(DataError, match=r"cannot tell the data set format.*'lightgcn'"):
        load_dataset(tmp_path)


# --- the registered data sets themselves ------------------------------------------------------
# users, items, interactions, given (train, valid, test) as in shared/data/README.md
EXPECTED = {
    "xwines": (10_561, 1_007, 150_000, None),
    "gowalla": (29_858, 40_981, 1_027_370, (810_128, 0, 217_242)),
    "ml-100k": (943, 1_682, 100_000, None),
    "amazon-beauty": (22_363, 12_101, 198_502, None),
    "amazon-sports": (35_598, 18_357, 296_337, None),
    "amazon-scientific": (8_442, 4_385, 59_427, (59_427 - 2 * 8_442, 8_442, 8_442)),
    "yelp": (30_431, 20_033, 316_354, None),
    "amazon-instruments": (24_772, 9_922, 206_153, None),
    "amazon-games": (50_546, 16_859, 452_989, None),
    "amazon-games-dealrec": (49_156, 17_332, 342_329, (299_987, 22_609, 19_733)),
    "microlens-50k": (49_887, 19_217, 359_048, (287_768, 35_970, 35_310)),
    "lastfm": (1_220, 4_606, 56_794, (50_800, 3_133, 2_861)),
}
PRESENT = set(available_datasets())


def test_expected_statistics_cover_the_registry():
    assert set(EXPECTED) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registered_dataset_statistics(name):
    if name not in PRESENT:
        pytest.skip(f"{name}: files not found under {find_data_dir()} (set SEMREC_DATA)")
    dataset = load_dataset(name)
    n_users, n_items, n_interactions, given = EXPECTED[name]
    x = dataset.interactions
    assert (x.n_users, x.n_items, len(x)) == (n_users, n_items, n_interactions)
    if given is None:
        assert dataset.given_parts is None
    else:
        assert np.bincount(dataset.given_parts, minlength=3).tolist() == list(given)
    if dataset.catalog is not None:
        assert len(dataset.catalog) == n_items


def test_scientific_rebuild_matches_the_derived_sequence_file():
    if "amazon-scientific" not in PRESENT:
        pytest.skip("amazon-scientific: files not found")
    folder = locate_dataset("amazon-scientific")
    if not (folder / "Scientific.seq.txt").is_file():
        pytest.skip("Scientific.seq.txt (derived, optional) not present")
    dataset: Dataset = load_dataset("amazon-scientific")
    x = dataset.interactions
    rebuilt = {x.user_ids[u]: x.item_ids[s].tolist() for u, s in enumerate(x.sequences())}
    with open(folder / "Scientific.seq.txt") as handle:
        derived = {line.split()[0]: line.split()[1:] for line in handle if line.strip()}
    assert rebuilt == derived
    last = np.cumsum(np.bincount(x.user_index)) - 1
    assert (dataset.given_parts[x.time_order][last] == Part.TEST).all()
