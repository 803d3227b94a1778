"""LLaRA sample files (Liao et al. SIGIR 2024; data from DROS): LastFM (and, in the same form,
Steam / MovieLens).

Files in one folder (each may be gzip-compressed):

- ``train.jsonl``, ``valid.jsonl``, ``test.jsonl``: one training / evaluation sample a line,
  ``{"seq": [...], "len_seq": n, "next": item}``: ``seq`` holds the previous (at most 10) item
  ids, left-aligned and right-padded with the padding id (4606 = number of items for LastFM);
  ``len_seq`` counts the real items (1 also for an empty history); ``next`` is the target.
  Each user's samples are consecutive and in time order, and a user's first sample has an
  all-padding ``seq``. We rebuild one sequence per user from the targets (a new user starts at
  every all-padding sample) and check that each sample's last history item is the previous
  sample's target.
- ``id2name.tsv``: ``item_id<TAB>name`` (the artist for LastFM), loaded as the field ``title``.

**The given split is by user, not by time**: the three files hold disjoint users (976 / 122 /
122 for LastFM), and every interaction of a user is marked with the file it came from
(TRAIN / VALID / TEST in ``given_parts``). A model evaluated on ``split(dataset, GivenSplit())``
therefore meets test users it never trained on: only history-based (sequential) models can be
scored that way, as LLaRA does (it predicts each valid/test sample's ``next`` from its ``seq``).
User ids are assigned here, ``0..`` in file order train, valid, test (the files carry none).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from semrec.data.catalog import ItemCatalog
from semrec.data.dataset import Dataset, Part
from semrec.data.formats._io import (
    find_file,
    integer_column,
    integer_interactions,
    read_delimited,
    read_jsonl,
    require_file,
)
from semrec.errors import DataError

SAMPLE_FORMAT = '{"seq": [item, ..., padding], "len_seq": n, "next": item}'
SPLIT_FILES = {part: f"{part.name.lower()}.jsonl" for part in Part}


def _history_matrix(frame: pd.DataFrame, path: Path, lines: np.ndarray) -> np.ndarray:
    lengths = np.fromiter(
        (len(s) if isinstance(s, list) else -1 for s in frame["seq"]), np.int64, len(frame)
    )
    bad = lengths != lengths[0]
    if lengths[0] < 1 or bad.any():
        row = int(bad.argmax()) if bad.any() else 0
        raise DataError(
            f"{path} line {lines[row]}: 'seq' must be a list as long as on line {lines[0]} "
            f"({lengths[0]} ids), got {frame['seq'].iloc[row]!r}"
        )
    try:
        return np.array(frame["seq"].tolist(), dtype=np.int64)
    except (TypeError, ValueError) as error:
        for row, seq in enumerate(frame["seq"]):
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in seq):
                raise DataError(
                    f"{path} line {lines[row]}: 'seq' must hold integer item ids, got {seq!r}"
                ) from error
        raise


def read_samples(path: Path, padding_id: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """One LLaRA sample file -> (user number per interaction from 0, item per interaction,
    padding id); the items of each user are in time order."""
    frame, lines = read_jsonl(path, ["seq", "next"], SAMPLE_FORMAT)
    history = _history_matrix(frame, path, lines)
    targets = integer_column(frame["next"], "next", path, lines)
    if padding_id is None:
        padding_id = int(history[0, 0])
    is_padding = history == padding_id
    starts_user = is_padding.all(axis=1)
    if not starts_user[0]:
        raise DataError(
            f"{path} line {lines[0]}: the first sample must start a user (a 'seq' of only the "
            f"padding id {padding_id}), got {history[0].tolist()}"
        )
    n_real = (~is_padding).sum(axis=1)
    gap = ~is_padding[:, 1:] & is_padding[:, :-1]
    if gap.any():
        row = int(gap.any(axis=1).argmax())
        raise DataError(
            f"{path} line {lines[row]}: padding before a real item in 'seq' {history[row].tolist()}"
        )
    if "len_seq" in frame:
        len_seq = integer_column(frame["len_seq"], "len_seq", path, lines)
        wrong = len_seq != np.maximum(n_real, 1)
        if wrong.any():
            row = int(wrong.argmax())
            raise DataError(
                f"{path} line {lines[row]}: len_seq {len_seq[row]} but 'seq' holds "
                f"{n_real[row]} real item(s)"
            )
    # a continuing sample's last history item is the previous sample's target
    continuing = np.flatnonzero(~starts_user)
    last_item = history[continuing, n_real[continuing] - 1]
    broken = last_item != targets[continuing - 1]
    if broken.any():
        row = int(continuing[broken.argmax()])
        raise DataError(
            f"{path} line {lines[row]}: 'seq' ends with {last_item[broken.argmax()]} but the "
            f"previous sample's 'next' is {targets[row - 1]}; samples of a user must be "
            "consecutive and in time order"
        )
    return np.cumsum(starts_user) - 1, targets, padding_id


def read_names(path: Path) -> ItemCatalog:
    _, frame, line_numbers = read_delimited(path, "\t", n_columns=2, expected="item_id<TAB>name")
    items = pd.DataFrame(
        {
            "item_id": integer_column(frame[0], "item_id", path, line_numbers),
            "title": frame[1].to_numpy(dtype=object),
        }
    )
    return ItemCatalog.from_frame(items, "item_id", "{title}", "{title}", source=str(path))


def read_llara(folder: Path, name: str = "llara", *, padding_id: int | None = None) -> Dataset:
    """Read ``{train,valid,test}.jsonl`` + ``id2name.tsv`` from ``folder`` (see module doc).

    ``padding_id`` defaults to the value filling the first sample's ``seq``.
    """
    folder = Path(folder)
    users, items, parts = [], [], []
    n_users = 0
    for part, file_name in SPLIT_FILES.items():
        path = require_file(folder, file_name, SAMPLE_FORMAT)
        user_numbers, targets, padding_id = read_samples(path, padding_id)
        users.append(user_numbers + n_users)
        items.append(targets)
        parts.append(np.full(len(targets), part, dtype=np.int8))
        n_users += int(user_numbers[-1]) + 1
    items_all = np.concatenate(items)
    if (items_all == padding_id).any():
        raise DataError(f"{folder}: the padding id {padding_id} appears as a 'next' target")
    names_path = find_file(folder, "id2name.tsv")
    catalog = None if names_path is None else read_names(names_path)
    interactions = integer_interactions(np.concatenate(users), items_all)
    return Dataset.build(name, interactions, catalog, np.concatenate(parts))
