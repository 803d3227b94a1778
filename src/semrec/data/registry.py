"""Named data sets: which files each needs, where they are looked for, which reader loads them.

A named data set is a folder under a data root (``<root>/gowalla/train.txt`` ...). Roots are
searched in this order (:func:`find_data_dir`): the ``data_dir`` argument (the CLI's
``--data-dir``), the ``SEMREC_DATA`` value the caller passes in as ``env_data_dir`` (library
code never reads the environment itself; several roots may be joined with ``os.pathsep``),
``../shared/data`` from the current directory, and ``../shared/data`` next to the source
checkout this module lives in. X-Wines ships inside the package and is always available.
Every expected file may also be present gzip-compressed (``<file>.gz``).

Not registered, because the files at hand are incomplete (see ``shared/data/README.md``):
``yelp2018`` and ``amazon-book`` (LightGCN ``train.txt`` missing, only ``test.txt``) and
``ml-1m`` (ratings and timestamps only for users 1-2999). Asking for them explains this.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from semrec.data.dataset import Dataset
from semrec.data.formats._io import find_file
from semrec.data.formats.dealrec import read_dealrec
from semrec.data.formats.generic import EXTENSIONS, FORMATS, read_table
from semrec.data.formats.lcrec import read_lcrec
from semrec.data.formats.lightgcn import read_lightgcn
from semrec.data.formats.llara import read_llara
from semrec.data.formats.movielens import read_movielens_100k
from semrec.data.formats.p5 import read_p5
from semrec.data.formats.recbole import read_recbole
from semrec.data.formats.xwines import read_xwines
from semrec.errors import DataError

Loader = Callable[[Path, str], Dataset]


@dataclass(frozen=True)
class DatasetSpec:
    """A named data set: its folder under a data root, the files it needs and its reader."""

    name: str
    folder: str
    description: str
    files: tuple[str, ...]
    format: str
    loader: Loader = field(repr=False)
    optional_files: tuple[str, ...] = ()
    bundled: bool = False

    def missing_files(self, folder: Path) -> list[str]:
        """The required files absent from ``folder`` (a ``.gz`` twin counts as present)."""
        return [name for name in self.files if find_file(folder, name) is None]


# --- X-Wines: bundled in the package, or a folder of the authors' files --------------------------
XWINES_FILE_PAIRS = (
    ("ratings.csv", "wines.csv"),
    ("XWines_Slim_150K_ratings.csv", "XWines_Slim_1K_wines.csv"),
    ("XWines_Test_1K_ratings.csv", "XWines_Test_100_wines.csv"),
)


def read_xwines_folder(folder: Path, name: str = "xwines") -> Dataset:
    """X-Wines from a folder: the bundled names, else the Slim files, else the Test files."""
    for ratings_name, wines_name in XWINES_FILE_PAIRS:
        ratings, wines = find_file(folder, ratings_name), find_file(folder, wines_name)
        if ratings is not None and wines is not None:
            return read_xwines(ratings, wines, name)
    raise DataError(
        f"{folder}: no X-Wines ratings + wines files; expected one of the pairs "
        f"{[list(pair) for pair in XWINES_FILE_PAIRS]} (.gz also accepted)"
    )


def _load_bundled_xwines(folder: Path | None, name: str) -> Dataset:
    package_folder = importlib.resources.files("semrec") / "datasets" / "xwines"
    with (
        importlib.resources.as_file(package_folder / "ratings.csv.gz") as ratings,
        importlib.resources.as_file(package_folder / "wines.csv.gz") as wines,
    ):
        return read_xwines(ratings, wines, name)


# --- the registry ----------------------------------------------------------------------------
def _specs(*specs: DatasetSpec) -> dict[str, DatasetSpec]:
    return {spec.name: spec for spec in specs}


REGISTRY: dict[str, DatasetSpec] = _specs(
    DatasetSpec(
        "xwines",
        "",
        "X-Wines Slim (bundled, CC0): 150k wine ratings 1-5 with timestamps, wine text",
        ("ratings.csv.gz", "wines.csv.gz"),
        "xwines",
        _load_bundled_xwines,
        bundled=True,
    ),
    DatasetSpec(
        "gowalla",
        "gowalla",
        "Gowalla check-ins, LightGCN split (train/test given); no item text",
        ("train.txt", "test.txt"),
        "lightgcn",
        read_lightgcn,
        optional_files=("user_list.txt", "item_list.txt"),
    ),
    DatasetSpec(
        "ml-100k",
        "ml-100k",
        "MovieLens 100K ratings 1-5 with timestamps; titles + genres",
        ("u.data", "u.item"),
        "movielens-100k",
        read_movielens_100k,
        optional_files=("u.genre",),
    ),
    DatasetSpec(
        "amazon-beauty",
        "amazon-beauty-p5",
        "Amazon-2014 Beauty 5-core (P5/S3-Rec sequences); titles + categories",
        ("sequential.txt", "datamaps.json", "Beauty.item_text.jsonl"),
        "p5",
        partial(read_p5, id_field="asin"),
    ),
    DatasetSpec(
        "amazon-sports",
        "amazon-sports-p5",
        "Amazon-2014 Sports 5-core (P5/S3-Rec sequences); NO titles: text = IDGenRec keyword IDs",
        ("sequential.txt", "datamaps.json", "Sports.idgenrec_textid.jsonl"),
        "p5",
        partial(read_p5, id_field="asin"),
    ),
    DatasetSpec(
        "amazon-scientific",
        "amazon-scientific-unisrec",
        "Amazon-2018 Scientific (UniSRec leave-one-out split given); title+categories+brand",
        (
            "Scientific.train.inter",
            "Scientific.valid.inter",
            "Scientific.test.inter",
            "Scientific.item2index",
            "Scientific.text",
        ),
        "recbole",
        partial(read_recbole, dataset="Scientific", id_field="asin"),
    ),
    DatasetSpec(
        "yelp",
        "yelp-p5",
        "Yelp (P5/S3-Rec sequences, repeats); business name + categories",
        ("sequential_data.txt", "datamaps.json", "Yelp.item.json"),
        "p5",
        partial(read_p5, id_field="business_id"),
    ),
    DatasetSpec(
        "amazon-instruments",
        "amazon-instruments-lcrec",
        "Amazon-2018 Instruments (LC-Rec sequences); no item text (ASINs only)",
        ("Instruments.inter.json", "Instruments.item2id"),
        "lcrec",
        partial(read_lcrec, dataset="Instruments"),
    ),
    DatasetSpec(
        "amazon-games",
        "amazon-games-lcrec",
        "Amazon-2018 Video Games (LC-Rec sequences); titles + categories",
        ("Games.inter.json", "Games.item2id", "Games.item_text.jsonl"),
        "lcrec",
        partial(read_lcrec, dataset="Games"),
    ),
    DatasetSpec(
        "amazon-games-dealrec",
        "amazon-games-dealrec",
        "Amazon-2018 Video Games (DEALRec train/valid/test given); titles + categories",
        (
            "sequential_train.txt",
            "sequential_valid.txt",
            "sequential_test.txt",
            "items.jsonl",
        ),
        "dealrec",
        read_dealrec,
    ),
    DatasetSpec(
        "microlens-50k",
        "microlens-50k-dealrec",
        "MicroLens-50K micro-videos (DEALRec train/valid/test given); video titles",
        (
            "sequential_train.txt",
            "sequential_valid.txt",
            "sequential_test.txt",
            "items.jsonl",
        ),
        "dealrec",
        read_dealrec,
    ),
    DatasetSpec(
        "lastfm",
        "lastfm-llara",
        "LastFM artists (LLaRA samples; split BY USER 976/122/122); artist names",
        ("train.jsonl", "valid.jsonl", "test.jsonl", "id2name.tsv"),
        "llara",
        read_llara,
    ),
)

#: Known data sets whose files at hand are incomplete: name -> why it cannot be loaded.
INCOMPLETE: dict[str, str] = {
    "yelp2018": "only the LightGCN test.txt was obtained (train.txt is missing)",
    "amazon-book": "only the LightGCN test.txt was obtained (train.txt is missing)",
    "ml-1m": "ratings and timestamps exist only for users 1-2999 (ratings.dat is missing)",
}

#: Folder formats a path can be loaded as, and the files that identify each (first match wins).
FOLDER_READERS: dict[str, Loader] = {
    "xwines": read_xwines_folder,
    "lightgcn": read_lightgcn,
    "dealrec": read_dealrec,
    "p5": read_p5,
    "lcrec": read_lcrec,
    "recbole": read_recbole,
    "movielens-100k": read_movielens_100k,
    "llara": read_llara,
}


def _detect_folder_format(folder: Path) -> str:
    names = {path.name.removesuffix(".gz") for path in folder.iterdir() if path.is_file()}
    checks = (
        ("xwines", any(set(pair) <= names for pair in XWINES_FILE_PAIRS)),
        ("lightgcn", {"train.txt", "test.txt"} <= names),
        ("dealrec", "sequential_train.txt" in names),
        ("p5", bool({"sequential.txt", "sequential_data.txt"} & names)),
        ("lcrec", any(name.endswith(".inter.json") for name in names)),
        ("recbole", any(name.endswith(".inter") for name in names)),
        ("movielens-100k", "u.data" in names),
        ("llara", {"train.jsonl", "valid.jsonl", "test.jsonl"} <= names),
    )
    for format, matches in checks:
        if matches:
            return format
    raise DataError(
        f"{folder}: cannot tell the data set format from the files present "
        f"({sorted(names)[:12]}); known folder formats: {list(FOLDER_READERS)} "
        "(pass format=)"
    )


# --- where data lives ------------------------------------------------------------------------
def _repository_root() -> Path | None:
    """The source checkout holding this module (a folder with pyproject.toml), if any."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return None


def _data_roots(data_dir: Path | None, env_data_dir: str | None) -> list[tuple[Path, str]]:
    roots: list[tuple[Path, str]] = []
    if data_dir is not None:
        roots.append((Path(data_dir).expanduser(), "--data-dir"))
    if env_data_dir:
        for entry in env_data_dir.split(os.pathsep):
            if entry:
                roots.append((Path(entry).expanduser(), "SEMREC_DATA"))
    roots.append((Path.cwd() / ".." / "shared" / "data", "../shared/data from the current folder"))
    repository = _repository_root()
    if repository is not None:
        roots.append((repository.parent / "shared" / "data", "../shared/data from the checkout"))
    unique: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for root, origin in roots:
        resolved = root.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append((resolved, origin))
    return unique


def find_data_dir(data_dir: Path | None = None, env_data_dir: str | None = None) -> list[Path]:
    """Candidate data roots in search order (duplicates removed; they need not exist)."""
    return [root for root, _ in _data_roots(data_dir, env_data_dir)]


def _spec(name: str) -> DatasetSpec | None:
    if name in REGISTRY:
        return REGISTRY[name]
    return next((spec for spec in REGISTRY.values() if spec.folder and spec.folder == name), None)


def locate_dataset(
    name: str, data_dir: Path | None = None, env_data_dir: str | None = None
) -> Path | None:
    """The folder holding registered data set ``name``; None when bundled.

    A missing data set fails naming the files expected, every folder searched (and what was
    wrong there), and how to point semrec at the files.
    """
    spec = _spec(name)
    if spec is None:
        raise _unknown_name(name)
    if spec.bundled:
        return None
    searched = []
    for root, origin in _data_roots(data_dir, env_data_dir):
        folder = root / spec.folder
        if not folder.is_dir():
            searched.append(f"  {folder}  ({origin}): no such folder")
            continue
        missing = spec.missing_files(folder)
        if not missing:
            return folder
        searched.append(f"  {folder}  ({origin}): missing {', '.join(missing)}")
    optional = f" (optional: {', '.join(spec.optional_files)})" if spec.optional_files else ""
    raise DataError(
        f"data set {spec.name!r} not found. It needs a folder {spec.folder}/ with "
        f"{', '.join(spec.files)}{optional}; each file may also be gzip-compressed (.gz). "
        "Searched:\n" + "\n".join(searched) + "\n"
        f"Put the files in {spec.folder}/ under a data folder and point semrec at that folder "
        "with --data-dir DIR or the SEMREC_DATA environment variable."
    )


def available_datasets(data_dir: Path | None = None, env_data_dir: str | None = None) -> list[str]:
    """Registered data sets whose files are present (X-Wines always is)."""
    roots = find_data_dir(data_dir, env_data_dir)
    return [
        spec.name
        for spec in REGISTRY.values()
        if spec.bundled
        or any(
            (r / spec.folder).is_dir() and not spec.missing_files(r / spec.folder) for r in roots
        )
    ]


def _unknown_name(name: str) -> DataError:
    if name in INCOMPLETE:
        return DataError(f"data set {name!r} cannot be loaded: {INCOMPLETE[name]}")
    return DataError(
        f"unknown data set {name!r}; registered names: {', '.join(REGISTRY)} "
        "(or give the path of a data file or folder)"
    )


# --- loading ---------------------------------------------------------------------------------
def _load_path(path: Path, format: str | None, columns: Mapping[str, str | None] | None) -> Dataset:
    name = path.name.split(".")[0] if path.is_file() else path.name
    if format in FOLDER_READERS:
        return FOLDER_READERS[format](path if path.is_dir() else path.parent, name)
    if path.is_dir():
        if format is not None:
            raise DataError(
                f"{path}: format {format!r} is not a folder format; folder formats: "
                f"{list(FOLDER_READERS)}"
            )
        return FOLDER_READERS[_detect_folder_format(path)](path, name)
    if format is not None and format not in FORMATS:
        raise DataError(
            f"{path}: unknown format {format!r}; table formats: {list(FORMATS)}, "
            f"folder formats: {list(FOLDER_READERS)}"
        )
    mapping = dict(columns or {})
    return read_table(
        path,
        user_column=mapping.get("user") or "user_id",
        item_column=mapping.get("item") or "item_id",
        rating_column=mapping.get("rating"),
        timestamp_column=mapping.get("timestamp"),
        format=format,
        name=name,
    )


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or any(text.lower().endswith(e) for e in EXTENSIONS)


def load_dataset(
    name_or_path: str | Path,
    data_dir: Path | None = None,
    env_data_dir: str | None = None,
    format: str | None = None,
    columns: Mapping[str, str | None] | None = None,
) -> Dataset:
    """Load a registered data set by name, or the file or folder at a path.

    A path to a folder is read with the folder format its files identify (or ``format``); a
    path to a file is a table (CSV/TSV/Parquet/JSONL, or ``format``) whose ``columns``
    mapping (keys ``user``, ``item``, ``rating``, ``timestamp``) names the columns; a file of
    a folder format (e.g. ``ml-100k/u.data`` with ``format="movielens-100k"``) loads its folder.
    ``format`` and ``columns`` are ignored for registered names, which are checked first.
    """
    if isinstance(name_or_path, str) and _spec(name_or_path) is not None:
        spec = _spec(name_or_path)
        folder = locate_dataset(spec.name, data_dir, env_data_dir)
        return spec.loader(folder, spec.name)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return _load_path(path, format, columns)
    if isinstance(name_or_path, Path) or _looks_like_path(str(name_or_path)):
        raise DataError(f"{path}: no such file or folder")
    raise _unknown_name(str(name_or_path))
