"""Shared file helpers for readers: transparent gzip, errors that name file and line."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from semrec.data.interactions import Interactions
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


def require_numeric(
    frame: pd.DataFrame, column: str, path: Path, integer: bool = False
) -> pd.Series:
    """The column as numbers; a non-numeric cell fails naming its line (header = line 1)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna() | frame[column].isna()
    if integer:
        bad |= values.notna() & (values % 1 != 0)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        kind = "an integer" if integer else "a number"
        raise DataError(
            f"{path} line {row + 2}: column {column!r} must be {kind}, "
            f"got {frame[column].iloc[row]!r}"
        )
    return values.astype("int64") if integer else values.astype("float64")


# --- helpers for the benchmark formats -------------------------------------------------------
_WHITESPACE = np.array([ord(c) for c in " \t\r\n\v\f"], dtype=np.uint8)
_POWERS_OF_TEN = 10 ** np.arange(19, dtype=np.int64)


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or its gzip-compressed twin ``folder/name.gz``, whichever exists."""
    for candidate in (name, f"{name}.gz") if not name.endswith(".gz") else (name, name[:-3]):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def require_file(folder: Path, name: str, what: str) -> Path:
    """Like :func:`find_file`, but a missing file fails naming what it should hold."""
    path = find_file(folder, name)
    if path is None:
        raise DataError(f"{folder / name}: file not found (expected {what}; .gz also accepted)")
    return path


def read_bytes(path: Path) -> bytes:
    """The whole file as bytes; ``.gz`` files are decompressed."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read ({error})") from error


def _line_number(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _line_text(data: bytes, offset: int, limit: int = 60) -> str:
    start = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    line = data[start : end if end >= 0 else len(data)].rstrip(b"\r")
    text = line.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."


def decode_text(path: Path, data: bytes, encoding: str = "utf-8") -> str:
    """Decode, failing with the line of the first undecodable byte."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = _line_number(data, error.start)
        raise DataError(
            f"{path} line {line}: not valid {encoding} text ({error.reason})"
        ) from error


@dataclass(frozen=True)
class IntLines:
    """A file of whitespace-separated integers, one record per non-blank line.

    ``heads[k]`` is the first number on the k-th non-blank line (file line ``line_numbers[k]``),
    ``counts[k]`` how many numbers follow it, and ``values`` those numbers, all lines
    concatenated in file order.
    """

    line_numbers: np.ndarray
    heads: np.ndarray
    counts: np.ndarray
    values: np.ndarray

    def head_of_values(self) -> np.ndarray:
        """The head of each value's line, aligned with ``values``."""
        return np.repeat(self.heads, self.counts)

    def line_of_values(self) -> np.ndarray:
        """The file line of each value, aligned with ``values``."""
        return np.repeat(self.line_numbers, self.counts)


def read_int_lines(path: Path, expected: str = "user_id item_id item_id ...") -> IntLines:
    """Parse lines like ``12 7 7 30`` into numbers, vectorized over the whole file.

    Fails naming the file and line for an empty file, a token that is not a non-negative
    integer, or a number too large for int64.
    """
    data = read_bytes(path)
    buffer = np.frombuffer(data, dtype=np.uint8)
    is_space = np.isin(buffer, _WHITESPACE)
    is_digit = (buffer >= ord("0")) & (buffer <= ord("9"))
    bad = ~(is_space | is_digit)
    if bad.any():
        offset = int(bad.argmax())
        raise DataError(
            f"{path} line {_line_number(data, offset)}: expected non-negative integers "
            f"({expected}), got {_line_text(data, offset)!r}"
        )
    edges = np.diff(np.concatenate(([0], is_digit.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if not len(starts):
        raise DataError(f"{path}: empty file, expected lines of {expected}")
    lengths = ends - starts
    if lengths.max() > 18:
        offset = int(starts[lengths.argmax()])
        raise DataError(f"{path} line {_line_number(data, offset)}: number too large")
    # value of each token = sum of its digits times powers of ten, counted from its end
    digit_positions = np.flatnonzero(is_digit)
    token_of_digit = np.repeat(np.arange(len(starts)), lengths)
    exponents = ends[token_of_digit] - digit_positions - 1
    digits = buffer[digit_positions].astype(np.int64) - ord("0")
    token_offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    numbers = np.add.reduceat(digits * _POWERS_OF_TEN[exponents], token_offsets)
    # group tokens by line: a token's line index = number of newlines before it
    newline_positions = np.flatnonzero(buffer == ord("\n"))
    token_line = np.searchsorted(newline_positions, starts)
    first_of_line = np.concatenate(([True], token_line[1:] != token_line[:-1]))
    head_positions = np.flatnonzero(first_of_line)
    tokens_per_line = np.diff(np.concatenate((head_positions, [len(starts)])))
    return IntLines(
        line_numbers=token_line[head_positions] + 1,
        heads=numbers[head_positions],
        counts=tokens_per_line - 1,
        values=numbers[~first_of_line],
    )


def check_unique_heads(lines: IntLines, path: Path, what: str = "user") -> None:
    """Each line-per-user file lists a user once."""
    order = np.argsort(lines.heads, kind="stable")
    repeated = np.flatnonzero(lines.heads[order][1:] == lines.heads[order][:-1])
    if len(repeated):
        first, again = order[repeated[0]], order[repeated[0] + 1]
        raise DataError(
            f"{path} line {lines.line_numbers[again]}: {what} {lines.heads[again]} is already "
            f"listed on line {lines.line_numbers[first]}; expected one line per {what}"
        )


def read_delimited(
    path: Path,
    sep: str,
    n_columns: int | None = None,
    header: bool = False,
    encoding: str = "utf-8",
    expected: str = "",
) -> tuple[list[str] | None, pd.DataFrame, np.ndarray]:
    """Split every non-blank line on ``sep`` (no quoting) into string columns.

    Returns the header cells (or None), the rows as a frame of strings (columns named by the
    header, else 0..n-1) and the file line number of each row. Every line must have the same
    number of fields as the header (or ``n_columns``); an empty file, a duplicated header name or
    a line with the wrong number of fields fails naming the file and line.
    """
    data = read_bytes(path)
    description = f" ({expected})" if expected else ""
    lines = pa.array(decode_text(path, data, encoding).split("\n"), type=pa.large_string())
    if b"\r" in data:  # CRLF line ends
        lines = pc.replace_substring_regex(lines, "\r$", "")
    non_blank = pc.not_equal(pc.utf8_trim_whitespace(lines), "").to_numpy(zero_copy_only=False)
    line_numbers = np.flatnonzero(non_blank) + 1
    lines = lines.filter(pa.array(non_blank))
    if not len(lines):
        raise DataError(f"{path}: empty file, expected {sep!r}-separated lines{description}")
    names: list[str] | None = None
    if header:
        names = [name.strip() for name in lines[0].as_py().split(sep)]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise DataError(
                f"{path} line {line_numbers[0]}: duplicate column name(s) {duplicated} "
                "in the header"
            )
        if n_columns is not None and len(names) != n_columns:
            raise DataError(
                f"{path} line {line_numbers[0]}: expected {n_columns} columns in the header"
                f"{description}, got {len(names)}: {names}"
            )
        n_columns = len(names)
        lines, line_numbers = lines[1:], line_numbers[1:]
    field_counts = pc.count_substring(lines, sep).to_numpy() + 1
    if n_columns is None:
        n_columns = int(field_counts[0]) if len(field_counts) else 0
    wrong = np.flatnonzero(field_counts != n_columns)
    if len(wrong):
        row = int(wrong[0])
        raise DataError(
            f"{path} line {line_numbers[row]}: expected {n_columns} {sep!r}-separated fields"
            f"{description}, got {field_counts[row]}"
        )
    cells = pc.split_pattern(lines, sep).flatten().to_numpy(zero_copy_only=False)
    frame = pd.DataFrame(
        cells.reshape(len(lines), n_columns),
        columns=names if names is not None else range(n_columns),
        dtype="str",
    )
    return names, frame, line_numbers


def integer_interactions(
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    user_vocabulary: np.ndarray | None = None,
    item_vocabulary: np.ndarray | None = None,
    rating: np.ndarray | None = None,
    timestamp: np.ndarray | None = None,
) -> Interactions:
    """``Interactions.from_ids`` for integer ids, indexed numerically (no string lookups).

    Same result as ``from_ids``: vocabularies are the sorted ids (or the given sorted integer
    vocabularies, which may hold ids without interactions) and ids become strings.
    """
    vocabularies = []
    indices = []
    for ids, vocabulary, what in (
        (user_ids, user_vocabulary, "user"),
        (item_ids, item_vocabulary, "item"),
    ):
        ids = np.asarray(ids, dtype=np.int64)
        if vocabulary is None:
            vocabulary, index = np.unique(ids, return_inverse=True)
        else:
            vocabulary = np.unique(np.asarray(vocabulary, dtype=np.int64))
            index = np.searchsorted(vocabulary, ids)
            unknown = index >= len(vocabulary)
            known = ~unknown
            unknown[known] = vocabulary[index[known]] != ids[known]
            if unknown.any():
                raise DataError(
                    f"{what} ids not in the given vocabulary: {ids[unknown][:5].tolist()}"
                )
        vocabularies.append(vocabulary.astype(str).astype(object))
        indices.append(index.astype(np.int64))
    return Interactions(
        user_index=indices[0],
        item_index=indices[1],
        user_ids=vocabularies[0],
        item_ids=vocabularies[1],
        rating=None if rating is None else np.asarray(rating, dtype=np.float32),
        timestamp=None if timestamp is None else np.asarray(timestamp, dtype=np.int64),
    )


def read_json(path: Path) -> object:
    """Parse a JSON document; a syntax error names its line and column."""
    data = read_bytes(path)
    text = decode_text(path, data)
    if not text.strip():
        raise DataError(f"{path}: empty file, expected a JSON document")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path} line {error.lineno} column {error.colno}: invalid JSON ({error.msg})"
        ) from error


def read_item_json(path: Path, key_description: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``{"<integer key>": {"title": ..., ...}, ...}`` -> (fields as text, integer keys)."""
    items = read_json(path)
    if not isinstance(items, dict) or not all(isinstance(v, dict) for v in items.values()):
        raise DataError(f'{path}: expected {{"<{key_description}>": {{"title": ..., ...}}, ...}}')
    frame = pd.DataFrame.from_dict(items, orient="index")
    keys = pd.Series(frame.index, dtype="str")
    bad = ~keys.str.fullmatch(r"\d{1,18}").to_numpy(dtype=bool, na_value=False)
    if bad.any():
        raise DataError(f"{path}: key {keys[bad].iloc[0]!r} is not a {key_description}")
    text = pd.DataFrame({column: [category_text(v) for v in frame[column]] for column in frame})
    return text, keys.astype("int64").to_numpy()


def check_same_asins(
    mapped: pd.DataFrame, text: pd.DataFrame, text_path: Path, map_path: Path
) -> None:
    """Item text and the id map must agree on each item's ASIN (both keyed by item_id)."""
    both = mapped.merge(text[["item_id", "asin"]], on="item_id", suffixes=("", "_text"))
    differ = both["asin"] != both["asin_text"]
    if differ.any():
        row = both[differ].iloc[0]
        raise DataError(
            f"{text_path}: item {row['item_id']} has asin {row['asin_text']!r} but "
            f"{map_path} maps it to {row['asin']!r}"
        )


def read_jsonl(
    path: Path, required: list[str], expected: str = ""
) -> tuple[pd.DataFrame, np.ndarray]:
    """One JSON object per non-blank line -> (frame with one row per line, file line numbers).

    Fails naming the file and line for an empty file, a line that is not a JSON object, or an
    object without one of the ``required`` keys (a ``null`` value counts as missing).
    """
    data = read_bytes(path)
    lines = decode_text(path, data).split("\n")
    records: list[dict] = []
    line_numbers: list[int] = []
    description = f" ({expected})" if expected else ""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path} line {number}: invalid JSON ({error.msg})") from error
        if not isinstance(record, dict):
            raise DataError(f"{path} line {number}: expected a JSON object{description}")
        records.append(record)
        line_numbers.append(number)
    if not records:
        raise DataError(f"{path}: empty file, expected one JSON object per line{description}")
    frame = pd.DataFrame.from_records(records)
    numbers = np.asarray(line_numbers, dtype=np.int64)
    for key in required:
        missing = frame[key].isna().to_numpy() if key in frame else np.ones(len(frame), bool)
        if missing.any():
            row = int(missing.argmax())
            raise DataError(f"{path} line {numbers[row]}: missing key {key!r}{description}")
    return frame, numbers


def integer_column(
    values: pd.Series, column: str, path: Path, line_numbers: np.ndarray
) -> np.ndarray:
    """A column of integer ids (ints, or strings of digits); anything else fails naming its line."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(numbers) | (np.nan_to_num(numbers) % 1 != 0)
    else:
        text = values.astype("str").str.strip()
        bad = ~text.str.fullmatch(r"-?\d{1,18}").to_numpy(dtype=bool, na_value=False)
        numbers = None
    if bad.any():
        row = int(bad.argmax())
        raise DataError(
            f"{path} line {line_numbers[row]}: {column!r} must be an integer id, "
            f"got {values.iloc[row]!r}"
        )
    return numbers.astype(np.int64) if numbers is not None else text.astype("int64").to_numpy()


def category_text(value: object) -> str:
    """Category paths as one string: ``[["A", "B"], ["C"]]`` -> ``"A > B; C"``, ``["A", "B"]`` ->
    ``"A > B"``; ``None`` or an empty list -> ``""``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        if value and all(isinstance(path, list | tuple) for path in value):
            return "; ".join(" > ".join(str(part) for part in path) for path in value if path)
        return " > ".join(str(part) for part in value)
    return str(value)


def read_user_lines(path: Path, expected: str, base: int = 0) -> IntLines:
    """A line-per-user file (``user item item ...``): ids must be ``>= base`` and each user
    may have one line only."""
    lines = read_int_lines(path, expected)
    check_unique_heads(lines, path)
    if base:
        for ids, line_of, what in (
            (lines.heads, lines.line_numbers, "user"),
            (lines.values, lines.line_of_values(), "item"),
        ):
            if len(ids) and ids.min() < base:
                row = int(ids.argmin())
                raise DataError(
                    f"{path} line {line_of[row]}: {what} id {ids[row]}, but ids are {base}-based"
                )
    return lines
