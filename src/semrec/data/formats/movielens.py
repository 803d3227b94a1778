"""MovieLens 100K raw files (GroupLens; Harper & Konstan, TiiS 2015).

- ``u.data``: ``user_id<TAB>item_id<TAB>rating<TAB>timestamp``, no header (ratings 1-5, unix
  seconds).
- ``u.item``: ``|``-separated, latin-1: ``movie_id|title|release_date|video_release_date|
  IMDb_URL|`` then 19 0/1 genre flags in the order of ``u.genre`` (``name|index`` lines; the
  standard list is used when the file is absent). Catalogue fields: ``title``,
  ``release_date``, ``genres`` (the flagged genre names, comma-separated).

No split ships with the files (the ``u1..u5`` / ``ua``/``ub`` splits are derivable and not read).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from semrec.data.catalog import ItemCatalog
from semrec.data.dataset import Dataset
from semrec.data.formats._io import (
    find_file,
    integer_column,
    integer_interactions,
    read_delimited,
    read_int_lines,
    require_file,
)
from semrec.errors import DataError

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
RATING_FORMAT = "user_id<TAB>item_id<TAB>rating<TAB>timestamp"
ITEM_COLUMNS = ("movie_id", "title", "release_date", "video_release_date", "imdb_url")
TITLE_TEMPLATE = "{title}"
TEXT_TEMPLATE = "{title}. Genres: {genres}."


def read_ratings(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``u.data`` -> (user ids, item ids, ratings, timestamps)."""
    lines = read_int_lines(path, RATING_FORMAT)
    wrong = np.flatnonzero(lines.counts != 3)
    if len(wrong):
        row = int(wrong[0])
        raise DataError(
            f"{path} line {lines.line_numbers[row]}: expected 4 fields ({RATING_FORMAT}), "
            f"got {lines.counts[row] + 1}"
        )
    values = lines.values.reshape(-1, 3)
    return lines.heads, values[:, 0], values[:, 1], values[:, 2]


def read_genres(path: Path | None) -> list[str]:
    """``u.genre`` (``name|index``) -> names in index order; the standard list if absent."""
    if path is None:
        return list(GENRES)
    _, frame, line_numbers = read_delimited(
        path, "|", n_columns=2, encoding="latin-1", expected="genre|index"
    )
    index = integer_column(frame[1], "index", path, line_numbers)
    if sorted(index.tolist()) != list(range(len(index))):
        raise DataError(f"{path}: genre indices must be 0..{len(index) - 1}, got {sorted(index)}")
    return frame[0].to_numpy(dtype=object)[np.argsort(index)].tolist()


def read_movies(path: Path, genres: list[str]) -> ItemCatalog:
    """``u.item`` -> catalogue with title, release date and genre names."""
    n_columns = len(ITEM_COLUMNS) + len(genres)
    _, frame, line_numbers = read_delimited(
        path, "|", n_columns=n_columns, encoding="latin-1",
        expected=f"movie_id|title|release_date|video_release_date|IMDb_URL|{len(genres)} flags",
    )  # fmt: skip
    movie_ids = integer_column(frame[0], "movie_id", path, line_numbers)
    flags = frame.iloc[:, len(ITEM_COLUMNS) :]
    bad = ~flags.isin(["0", "1"]).to_numpy()
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise DataError(
            f"{path} line {line_numbers[row]}: genre flag {genres[column]!r} must be 0 or 1, "
            f"got {flags.iat[row, column]!r}"
        )
    names = np.asarray(genres, dtype=object)
    on = flags.to_numpy() == "1"
    items = pd.DataFrame(
        {
            "item_id": movie_ids,
            "title": frame[1].to_numpy(dtype=object),
            "release_date": frame[2].to_numpy(dtype=object),
            "genres": [", ".join(names[row]) for row in on],
        }
    )
    return ItemCatalog.from_frame(items, "item_id", TITLE_TEMPLATE, TEXT_TEMPLATE, source=str(path))


def read_movielens_100k(folder: Path, name: str = "ml-100k") -> Dataset:
    """Read ``u.data`` + ``u.item`` (+ ``u.genre``) from ``folder``."""
    folder = Path(folder)
    users, items, ratings, timestamps = read_ratings(require_file(folder, "u.data", RATING_FORMAT))
    catalog = read_movies(
        require_file(folder, "u.item", "movie_id|title|...|19 genre flags"),
        read_genres(find_file(folder, "u.genre")),
    )
    interactions = integer_interactions(users, items, rating=ratings, timestamp=timestamps)
    missing = np.setdiff1d(items, catalog.item_ids.astype(np.int64))
    if len(missing):
        raise DataError(
            f"{folder / 'u.data'}: {len(missing)} rated movie(s) missing from u.item, "
            f"e.g. {missing[:3].tolist()}"
        )
    return Dataset.build(name, interactions, catalog)
