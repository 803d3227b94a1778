"""Plain tables: CSV, TSV, Parquet or JSON Lines, one interaction (or one item) per row.

The format comes from the file name (``.csv``, ``.tsv``/``.tab``, ``.parquet``/``.pq``,
``.jsonl``/``.ndjson``; a trailing ``.gz`` is decompressed transparently) or from ``format=``.
Ids may be integers or strings (integer ids sort numerically). Ratings must be numbers.
Timestamps may be numbers (taken as unix seconds) or date-time strings (converted to unix
seconds, UTC when no zone is given).
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow

from semrec.data.catalog import ItemCatalog
from semrec.data.dataset import Dataset
from semrec.data.formats._io import read_csv_checked, read_jsonl
from semrec.data.interactions import Interactions
from semrec.errors import DataError

FORMATS = ("csv", "tsv", "parquet", "jsonl")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
SEPARATORS = {"csv": ",", "tsv": "\t"}


def table_format(path: Path, format: str | None = None) -> str:
    """The table format of ``path``: ``format`` if given, else from the extension."""
    if format is not None:
        if format not in FORMATS:
            raise DataError(f"{path}: unknown format {format!r}; accepted formats: {list(FORMATS)}")
        return format
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    detected = EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if detected is None:
        raise DataError(
            f"{path}: cannot tell the table format from the file name; accepted formats: "
            f"{list(FORMATS)} (extensions {sorted(EXTENSIONS)}, optionally + .gz), "
            "or pass format="
        )
    return detected


def _row_location(format: str) -> tuple[str, int]:
    """How errors name row ``r``: ``(word, offset)`` -> ``f"{word} {r + offset}"``."""
    return {"csv": ("line", 2), "tsv": ("line", 2), "jsonl": ("line", 1)}.get(format, ("row", 1))


def read_frame(
    path: Path, required: list[str], format: str | None = None, sep: str | None = None
) -> tuple[pd.DataFrame, str]:
    """Read a table and check that the ``required`` columns exist -> (frame, format)."""
    path = Path(path)
    format = table_format(path, format)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if format in SEPARATORS:
        frame = read_csv_checked(path, required, sep=sep or SEPARATORS[format])
    elif format == "jsonl":
        frame, line_numbers = read_jsonl(path, [], "one JSON object per line")
        if not np.array_equal(line_numbers, np.arange(1, len(frame) + 1)):
            frame.index = line_numbers - 1  # keep errors pointing at file lines past blank lines
    else:
        frame = _read_parquet(path)
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; columns are {list(frame.columns)}")
    return frame, format


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                frame = pd.read_parquet(io.BytesIO(handle.read()))
        else:
            frame = pd.read_parquet(path)
    except (OSError, EOFError, ValueError, pyarrow.ArrowException) as error:
        raise DataError(f"{path}: cannot read as Parquet ({error})") from error
    if frame.empty:
        raise DataError(f"{path}: no rows")
    return frame


def _where(path: Path, format: str, frame: pd.DataFrame, row: int) -> str:
    word, offset = _row_location(format)
    return f"{path} {word} {int(frame.index[row]) + offset}"


def _ids(frame: pd.DataFrame, column: str, path: Path, format: str) -> np.ndarray:
    values = frame[column]
    missing = values.isna().to_numpy()
    if missing.any():
        row = int(missing.argmax())
        raise DataError(f"{_where(path, format, frame, row)}: no value in id column {column!r}")
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64)
        if (numbers % 1 == 0).all():  # integer ids pandas read as floats
            return numbers.astype(np.int64)
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.to_numpy(dtype=np.int64)
    return values.astype("str").to_numpy(dtype=object)


def _numbers(frame: pd.DataFrame, column: str, path: Path, format: str) -> np.ndarray:
    numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers)
    if bad.any():
        row = int(bad.argmax())
        raise DataError(
            f"{_where(path, format, frame, row)}: column {column!r} must be a number, "
            f"got {frame[column].iloc[row]!r}"
        )
    return numbers


def _unix_seconds(frame: pd.DataFrame, column: str, path: Path, format: str) -> np.ndarray:
    values = frame[column]
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        times = values
    elif pd.api.types.is_numeric_dtype(values.dtype):
        return np.floor(_numbers(frame, column, path, format)).astype(np.int64)
    else:
        text = values.astype("str").str.strip()
        numeric = pd.to_numeric(text, errors="coerce")
        if numeric.notna().all():
            return np.floor(numeric.to_numpy(dtype=np.float64)).astype(np.int64)
        times = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    bad = times.isna().to_numpy()
    if bad.any():
        row = int(bad.argmax())
        raise DataError(
            f"{_where(path, format, frame, row)}: column {column!r} must be unix seconds or a "
            f"date-time, got {values.iloc[row]!r}"
        )
    if getattr(times.dt, "tz", None) is None:
        times = times.dt.tz_localize("UTC")
    return times.dt.tz_convert("UTC").to_numpy(dtype="datetime64[s]").astype(np.int64)


def read_table(
    path: Path,
    user_column: str = "user_id",
    item_column: str = "item_id",
    rating_column: str | None = None,
    timestamp_column: str | None = None,
    sep: str | None = None,
    format: str | None = None,
    name: str | None = None,
    catalog: ItemCatalog | None = None,
) -> Dataset:
    """Interactions from one table; ``catalog`` (e.g. from :func:`read_item_table`) is aligned
    to the items. The data set is named ``name`` or the file name without extensions."""
    path = Path(path)
    columns = [user_column, item_column, rating_column, timestamp_column]
    frame, format = read_frame(path, [c for c in columns if c], format, sep)
    interactions = Interactions.from_ids(
        _ids(frame, user_column, path, format),
        _ids(frame, item_column, path, format),
        None if rating_column is None else _numbers(frame, rating_column, path, format),
        None if timestamp_column is None else _unix_seconds(frame, timestamp_column, path, format),
    )
    return Dataset.build(name or path.name.split(".")[0], interactions, catalog)


def read_item_table(
    path: Path,
    item_column: str = "item_id",
    title_template: str = "{title}",
    text_template: str | None = None,
    sep: str | None = None,
    format: str | None = None,
) -> ItemCatalog:
    """An item catalogue from one table, one row per item; other columns become text fields
    (lists are joined with ", ")."""
    path = Path(path)
    frame, format = read_frame(path, [item_column], format, sep)
    ids = _ids(frame, item_column, path, format)
    duplicated = pd.Series(ids).duplicated().to_numpy()
    if duplicated.any():
        row = int(duplicated.argmax())
        raise DataError(f"{_where(path, format, frame, row)}: item {ids[row]!r} is listed twice")
    fields = frame.drop(columns=[item_column]).reset_index(drop=True)
    for column in fields.columns:
        if fields[column].dtype == object:
            fields[column] = [
                ", ".join(map(str, v)) if isinstance(v, list | tuple | np.ndarray) else v
                for v in fields[column]
            ]
    fields.insert(0, item_column, ids)
    return ItemCatalog.from_frame(
        fields, item_column, title_template, text_template, source=str(path)
    )
