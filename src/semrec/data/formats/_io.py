"""Shared file helpers for readers: transparent gzip, errors that name file and line."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from semrec.errors import DataError


def open_text(path: Path, encoding: str = "utf-8") -> io.TextIOBase:
    """Open a text file for reading; ``.gz`` files are decompressed on the fly."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding=encoding, newline="")


def numbered_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """(1-based line number, line without newline) for every non-blank line."""
    try:
        with open_text(path, encoding) as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if line.strip():
                    yield number, line
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read as {encoding} text ({error})") from error


def read_csv_checked(
    path: Path,
    required: list[str],
    sep: str = ",",
    encoding: str = "utf-8",
    **kwargs,
) -> pd.DataFrame:
    """Read a delimited file with a header and check its columns.

    Fails with a DataError naming the file for an empty file, a duplicated header name, a
    missing required column, or a row with the wrong number of fields (with its line number).
    """
    with open_text(path, encoding) as handle:
        header = handle.readline().rstrip("\r\n")
    if not header.strip():
        raise DataError(f"{path}: empty file, expected a header line with columns {required}")
    names = [name.strip() for name in header.split(sep)]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise DataError(f"{path} line 1: duplicate column name(s) {duplicated} in the header")
    missing = [name for name in required if name not in names]
    if missing:
        raise DataError(f"{path} line 1: missing column(s) {missing}; header has {names}")
    try:
        frame = pd.read_csv(path, sep=sep, encoding=encoding, compression="infer", **kwargs)
    except pd.errors.ParserError as error:
        raise DataError(f"{path}: {_parser_message(error, len(names))}") from error
    except (UnicodeDecodeError, OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read as {encoding} text ({error})") from error
    if frame.empty:
        raise DataError(f"{path}: header but no data rows")
    return frame


def _parser_message(error: Exception, n_columns: int) -> str:
    # pandas says "Error tokenizing data. C error: Expected 3 fields in line 5, saw 4"
    text = str(error).strip()
    marker = "Expected "
    if marker in text:
        detail = text[text.index(marker) :]
        return f"{detail} (the header has {n_columns} columns)"
    return text


def require_numeric(frame: pd.DataFrame, column: str, path: Path, integer: bool = False) -> pd.Series:
    """The column as numbers; a non-numeric cell fails naming its line (header = line 1)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna() | frame[column].isna()
    if integer:
        bad |= values.notna() & (values % 1 != 0)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        kind = "an integer" if integer else "a number"
        raise DataError(
            f"{path} line {row + 2}: column {column!r} must be {kind}, got {frame[column].iloc[row]!r}"
        )
    return values.astype("int64") if integer else values.astype("float64")
