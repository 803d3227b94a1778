"""RecBole atomic files (Zhao et al. CIKM 2021) and the UniSRec benchmark form built on them.

An atomic file is tab-separated with a typed header, ``name:type`` per column, type one of
``token``, ``token_seq`` (space-separated tokens), ``float``, ``float_seq``::

    user_id:token	item_id:token	rating:float	timestamp:float

A folder holds ``<D>.inter`` (interactions), optionally ``<D>.item`` (item features; every
non-id column becomes a catalogue field) and ``<D>.text`` (UniSRec item text,
``item_id:token	text:token_seq``). Instead of ``<D>.inter`` it may hold RecBole's pre-split
benchmark files ``<D>.train.inter``, ``<D>.valid.inter``, ``<D>.test.inter``; their rows are
marked TRAIN / VALID / TEST in ``given_parts``.

**UniSRec sequential form** (e.g. amazon-scientific-unisrec): each benchmark row is
``user_id:token	item_id_list:token_seq	item_id:token``, the previous (at most ``W``, here 50)
items -> the next item; train holds every earlier prefix, valid the second-to-last item and
test the last item of each user's sequence, and the rows are not in time order. We rebuild each
user's full chronological sequence from the rows themselves (rather than reading the
``Scientific.seq.txt`` that our data folder derives from them, which other copies of the data
lack): a row whose history is shorter than ``W`` sits at position ``len(history)``; rows with a
full window are chained (the next row's history is this history shifted by one plus this
target). Every history is then checked against the rebuilt sequence, and a file whose rows do
not form exactly one sequence per user fails. The first item of each sequence (never a target)
and all train targets are TRAIN, the valid target VALID and the test target TEST, so
``split(dataset, GivenSplit())`` reproduces the benchmark's leave-one-out split. Item ids there
are the integer indices of ``<D>.item2index`` (``raw id<TAB>index``); the raw id (the ASIN) is
kept as the catalogue field ``id_field`` and ``<D>.text``, keyed by raw id, is joined through it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from semrec.data.catalog import ItemCatalog
from semrec.data.dataset import Dataset, Part
from semrec.data.formats._io import find_file, integer_interactions, open_text, read_delimited
from semrec.data.interactions import Interactions
from semrec.errors import DataError

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
USER_FIELD = "user_id"
ITEM_FIELD = "item_id"
HISTORY_FIELD = "item_id_list"
RATING_FIELD = "rating"
TIME_FIELD = "timestamp"
TITLE_FIELDS = ("title", "movie_title", "name", "text")
_CANONICAL_INTEGER = re.compile(r"0|[1-9]\d{0,17}")


def read_atomic(path: Path) -> tuple[pd.DataFrame, dict[str, str], np.ndarray]:
    """An atomic file -> (string cells named by field, field -> type, file line of each row).

    Fails naming the file and line for an empty file (or one with only a header), a header
    cell without a known ``:type``, a field named twice, or a row with the wrong number of
    fields.
    """
    names, frame, line_numbers = read_delimited(
        path, "\t", header=True, expected="RecBole atomic file, header name:type<TAB>..."
    )
    types: dict[str, str] = {}
    for cell in names or []:
        field, _, kind = cell.rpartition(":")
        if not field or kind not in FIELD_TYPES:
            raise DataError(
                f"{path} line 1: header cell {cell!r} must be name:type with type one of "
                f"{list(FIELD_TYPES)}"
            )
        if field in types:
            raise DataError(f"{path} line 1: duplicate field {field!r} in the header")
        types[field] = kind
    if frame.empty:
        raise DataError(f"{path}: header but no data rows")
    frame.columns = list(types)
    return frame, types, line_numbers


def _require_fields(types: dict[str, str], fields: list[str], path: Path) -> None:
    missing = [field for field in fields if field not in types]
    if missing:
        header = [f"{field}:{kind}" for field, kind in types.items()]
        raise DataError(f"{path} line 1: missing field(s) {missing}; header has {header}")


def _floats(frame: pd.DataFrame, field: str, path: Path, line_numbers: np.ndarray) -> np.ndarray:
    values = pd.to_numeric(frame[field].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(bad.argmax())
        raise DataError(
            f"{path} line {line_numbers[row]}: field {field!r} must be a number, "
            f"got {frame[field].iloc[row]!r}"
        )
    return values


def _tokens(
    values: pd.Series | np.ndarray, field: str, path: Path, lines: np.ndarray
) -> np.ndarray:
    tokens = np.asarray(values, dtype=object)
    empty = pd.Series(tokens, dtype="str").str.strip().eq("").to_numpy()
    if empty.any():
        row = int(empty.argmax())
        raise DataError(f"{path} line {lines[row]}: field {field!r} is empty")
    return tokens


def _as_ids(tokens: np.ndarray) -> np.ndarray:
    """Integer ids where every token is a canonical integer (so they sort numerically)."""
    text = pd.Series(tokens, dtype="str")
    if len(text) and text.str.fullmatch(_CANONICAL_INTEGER).all():
        return text.astype("int64").to_numpy()
    return tokens


def _interactions(
    users: np.ndarray,
    items: np.ndarray,
    rating: np.ndarray | None = None,
    timestamp: np.ndarray | None = None,
) -> Interactions:
    users, items = _as_ids(users), _as_ids(items)
    if users.dtype.kind == "i" and items.dtype.kind == "i":
        return integer_interactions(users, items, rating=rating, timestamp=timestamp)
    return Interactions.from_ids(users, items, rating, timestamp)


# --- the UniSRec history -> target form ------------------------------------------------------
def _split_histories(
    histories: pd.Series, path: Path, line_numbers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Space-separated token lists -> (all tokens concatenated, number of tokens per row)."""
    empty = histories.str.strip().eq("").to_numpy()
    if empty.any():
        row = int(empty.argmax())
        raise DataError(f"{path} line {line_numbers[row]}: empty {HISTORY_FIELD!r}")
    text = pa.array(histories.str.strip().to_numpy(dtype=object), pa.large_string())
    split = pc.utf8_split_whitespace(text)
    return split.flatten().to_numpy(zero_copy_only=False), pc.list_value_length(split).to_numpy()


def _chain_positions(
    history: list[tuple[int, ...]], targets: list[int], window: int, where: str
) -> list[int]:
    """Positions of full-window rows: each row's successor has history[1:] + (target,)."""
    row_of_history = {h: row for row, h in enumerate(history)}
    if len(row_of_history) != len(history):
        raise DataError(f"{where}: two rows have the same {window}-item history; cannot order them")
    successors = {(*h[1:], t) for h, t in zip(history, targets, strict=True)}
    starts = [row for row, h in enumerate(history) if h not in successors]
    if len(starts) != 1:
        raise DataError(f"{where}: full-window history rows do not form one chain")
    positions = [0] * len(history)
    row, position = starts[0], window
    for _ in range(len(history)):
        positions[row] = position
        following = (*history[row][1:], targets[row])
        if following not in row_of_history:
            break
        row, position = row_of_history[following], position + 1
    else:
        raise DataError(f"{where}: full-window history rows form a cycle")
    if position != window + len(history) - 1:
        raise DataError(f"{where}: full-window history rows do not form one chain")
    return positions


def rebuild_sequences(
    users: np.ndarray,
    history_items: np.ndarray,
    history_lengths: np.ndarray,
    targets: np.ndarray,
    row_parts: np.ndarray,
    row_where: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """History -> target rows back to one chronological sequence per user.

    ``users``, ``targets``, ``row_parts`` are per row and integer-coded; ``history_items`` is
    every row's history concatenated (``history_lengths`` per row). Returns per interaction
    (user, item, part), ordered by user and then time. ``row_where[r]`` ("file line n") names
    row ``r`` in errors.
    """
    n_rows = len(users)
    window = int(history_lengths.max())
    offsets = np.concatenate(([0], np.cumsum(history_lengths)[:-1]))
    positions = np.where(history_lengths < window, history_lengths, -1)
    for user in np.unique(users[positions < 0]):  # users with full windows: chain them (rare)
        rows = np.flatnonzero((users == user) & (positions < 0))
        history = [tuple(history_items[offsets[r] : offsets[r] + window].tolist()) for r in rows]
        positions[rows] = _chain_positions(
            history, targets[rows].tolist(), window, row_where[rows[0]]
        )
    # each user's rows must sit at positions 1..n_rows_u exactly once
    order = np.lexsort((positions, users))
    sorted_users = users[order]
    rows_per_user = np.bincount(sorted_users)
    first_row = np.concatenate(([0], np.cumsum(rows_per_user)[:-1]))
    expected = np.arange(n_rows) - first_row[sorted_users] + 1
    wrong = np.flatnonzero(positions[order] != expected)
    if len(wrong):
        row = order[wrong[0]]
        raise DataError(
            f"{row_where[row]}: the rows of user {users[row]} do not form one sequence "
            f"(no row for position {expected[wrong[0]]})"
        )
    # sequence of user u = item at position 0 + targets at positions 1..n_u-1
    length = rows_per_user + 1
    start = np.concatenate(([0], np.cumsum(length)[:-1]))
    sequence = np.empty(int(length.sum()), dtype=np.int64)
    sequence[start[users] + positions] = targets
    first = order[first_row]  # the position-1 row of every user: its history is [item 0]
    sequence[start[sorted_users[first_row]]] = history_items[offsets[first]]
    # every history must be the window just before its target
    within = np.arange(len(history_items)) - np.repeat(offsets, history_lengths)
    window_start = np.repeat(start[users] + positions - history_lengths, history_lengths)
    mismatch = np.flatnonzero(sequence[window_start + within] != history_items)
    if len(mismatch):
        row = int(np.searchsorted(offsets, mismatch[0], side="right") - 1)
        raise DataError(
            f"{row_where[row]}: the history of user {users[row]} contradicts the user's other "
            "rows; expected one consistent sequence per user"
        )
    parts = np.full(len(sequence), Part.TRAIN, dtype=np.int8)
    parts[start[users] + positions] = row_parts
    sequence_users = np.repeat(np.arange(len(length)), length)
    return sequence_users, sequence, parts


def _read_history_rows(
    paths: dict[Part, Path],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The benchmark files in history -> target form -> (user token, item token, part) per
    interaction of the rebuilt sequences."""
    user_tokens, history_lengths, histories, targets, parts, where = [], [], [], [], [], []
    for part, path in paths.items():
        frame, types, line_numbers = read_atomic(path)
        _require_fields(types, [USER_FIELD, HISTORY_FIELD, ITEM_FIELD], path)
        user_tokens.append(_tokens(frame[USER_FIELD], USER_FIELD, path, line_numbers))
        targets.append(_tokens(frame[ITEM_FIELD], ITEM_FIELD, path, line_numbers))
        tokens, lengths = _split_histories(frame[HISTORY_FIELD], path, line_numbers)
        histories.append(tokens)
        history_lengths.append(lengths)
        parts.append(np.full(len(frame), part, dtype=np.int8))
        where.extend(f"{path} line {number}" for number in line_numbers)
    user_codes, user_vocabulary = pd.factorize(np.concatenate(user_tokens))
    all_targets = np.concatenate(targets)
    all_histories = np.concatenate(histories)
    item_codes, item_vocabulary = pd.factorize(np.concatenate([all_targets, all_histories]))
    users, items, item_parts = rebuild_sequences(
        user_codes.astype(np.int64),
        item_codes[len(all_targets) :].astype(np.int64),
        np.concatenate(history_lengths),
        item_codes[: len(all_targets)].astype(np.int64),
        np.concatenate(parts),
        where,
    )
    return (
        np.asarray(user_vocabulary, dtype=object)[users],
        np.asarray(item_vocabulary, dtype=object)[items],
        item_parts,
    )


# --- plain interaction rows -----------------------------------------------------------------
def _read_inter_rows(
    path: Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    frame, types, line_numbers = read_atomic(path)
    _require_fields(types, [USER_FIELD, ITEM_FIELD], path)
    users = _tokens(frame[USER_FIELD], USER_FIELD, path, line_numbers)
    items = _tokens(frame[ITEM_FIELD], ITEM_FIELD, path, line_numbers)
    rating = _floats(frame, RATING_FIELD, path, line_numbers) if RATING_FIELD in types else None
    timestamp = None
    if TIME_FIELD in types:
        timestamp = np.floor(_floats(frame, TIME_FIELD, path, line_numbers)).astype(np.int64)
    return users, items, rating, timestamp


# --- items ------------------------------------------------------------------------------------
def _item_frame(path: Path) -> pd.DataFrame:
    frame, types, line_numbers = read_atomic(path)
    _require_fields(types, [ITEM_FIELD], path)
    _tokens(frame[ITEM_FIELD], ITEM_FIELD, path, line_numbers)
    duplicated = frame[ITEM_FIELD].duplicated().to_numpy()
    if duplicated.any():
        row = int(duplicated.argmax())
        raise DataError(
            f"{path} line {line_numbers[row]}: item {frame[ITEM_FIELD].iloc[row]!r} is listed twice"
        )
    return frame


def _recbole_catalog(folder: Path, dataset: str, id_field: str) -> ItemCatalog | None:
    paths = [p for p in (find_file(folder, f"{dataset}.{kind}") for kind in ("item", "text")) if p]
    if not paths:
        return None
    frame = _item_frame(paths[0])
    for path in paths[1:]:
        extra = _item_frame(path)
        extra = extra.drop(columns=[c for c in extra.columns if c in frame and c != ITEM_FIELD])
        frame = frame.merge(extra, on=ITEM_FIELD, how="outer")
    index_path = find_file(folder, f"{dataset}.item2index")
    if index_path is not None:  # UniSRec: files keyed by raw id, interactions by index
        _, index, line_numbers = read_delimited(
            index_path, "\t", n_columns=2, expected="raw id, index"
        )
        _tokens(index[1], "index", index_path, line_numbers)
        mapping = index.rename(columns={0: id_field, 1: ITEM_FIELD})
        frame = mapping.merge(frame.rename(columns={ITEM_FIELD: id_field}), on=id_field, how="left")
        frame = frame[[ITEM_FIELD] + [c for c in frame.columns if c != ITEM_FIELD]]
    fields = [c for c in frame.columns if c != ITEM_FIELD]
    title_field = next((f for f in TITLE_FIELDS if f in fields), fields[0] if fields else None)
    if title_field is None:
        return None
    text_template = "{text}" if "text" in fields else None
    source = " + ".join(str(p) for p in [*paths, index_path] if p is not None)
    return ItemCatalog.from_frame(
        frame, ITEM_FIELD, f"{{{title_field}}}", text_template, source=source
    )


def _header_fields(path: Path) -> list[str]:
    """The field names (types stripped) of an atomic file's header line."""
    with open_text(path) as handle:
        header = handle.readline().rstrip("\r\n")
    return [cell.rpartition(":")[0] for cell in header.split("\t")]


def _dataset_prefix(folder: Path) -> str:
    stems = set()
    for path in folder.iterdir():
        name = path.name.removesuffix(".gz")
        if name.endswith(".inter"):
            stem = name.removesuffix(".inter")
            for part in (".train", ".valid", ".test"):
                stem = stem.removesuffix(part)
            stems.add(stem)
    if len(stems) != 1:
        found = "none" if not stems else sorted(stems)
        raise DataError(
            f"{folder}: expected the files of one RecBole data set (<name>.inter or "
            f"<name>.train/.valid/.test.inter), found data set names: {found}"
        )
    return stems.pop()


def read_recbole(
    folder: Path, name: str | None = None, *, dataset: str | None = None, id_field: str = "raw_id"
) -> Dataset:
    """Read the RecBole files of data set ``dataset`` (default: the one ``*.inter`` prefix
    in ``folder``); see the module docstring for the forms accepted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected RecBole atomic files)")
    dataset = dataset or _dataset_prefix(folder)
    name = name or dataset
    catalog = _recbole_catalog(folder, dataset, id_field)
    single = find_file(folder, f"{dataset}.inter")
    split_paths = {part: find_file(folder, f"{dataset}.{part.name.lower()}.inter") for part in Part}
    if single is not None:
        users, items, rating, timestamp = _read_inter_rows(single)
        return Dataset.build(name, _interactions(users, items, rating, timestamp), catalog)
    missing = [
        f"{dataset}.{part.name.lower()}.inter" for part, p in split_paths.items() if p is None
    ]
    if missing:
        raise DataError(
            f"{folder}: expected {dataset}.inter or the benchmark files "
            f"{dataset}.{{train,valid,test}}.inter; missing {missing}"
        )
    if any(HISTORY_FIELD in _header_fields(path) for path in split_paths.values()):
        users, items, parts = _read_history_rows(split_paths)
        return Dataset.build(name, _interactions(users, items), catalog, parts)
    columns = [_read_inter_rows(path) for path in split_paths.values()]
    parts = np.concatenate(
        [np.full(len(c[0]), part, dtype=np.int8) for part, c in zip(Part, columns, strict=True)]
    )
    users = np.concatenate([c[0] for c in columns])
    items = np.concatenate([c[1] for c in columns])
    rating = None if any(c[2] is None for c in columns) else np.concatenate([c[2] for c in columns])
    timestamp = (
        None if any(c[3] is None for c in columns) else np.concatenate([c[3] for c in columns])
    )
    return Dataset.build(name, _interactions(users, items, rating, timestamp), catalog, parts)
