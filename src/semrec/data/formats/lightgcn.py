"""LightGCN / NGCF text format (Wang et al. SIGIR 2019, He et al. SIGIR 2020): Gowalla, Yelp2018,
Amazon-Book as shipped by ``kuandeng/LightGCN``.

``train.txt`` and ``test.txt`` hold one line per user, ``user_id item_id item_id ...``, with
0-based remapped integer ids (a user line may list no items). ``user_list.txt`` /
``item_list.txt`` (header ``org_id remap_id``) map the remapped ids back to the original ones;
they are read only to size the vocabularies. The remapped integers are kept as the ids, so
``user_index == int(user_id)`` and ``item_index == int(item_id)`` and users or items without
any interaction still exist. The files are the split: rows from ``train.txt`` are
:attr:`Part.TRAIN`, rows from ``test.txt`` :attr:`Part.TEST`. No ratings, no timestamps (the
order of items on a line carries no time meaning).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semrec.data.dataset import Dataset, Part
from semrec.data.formats._io import (
    find_file,
    integer_interactions,
    read_delimited,
    read_user_lines,
    require_file,
)
from semrec.errors import DataError

LINE_FORMAT = "user_id item_id item_id ..."
SPLIT_FILES = {Part.TRAIN: "train.txt", Part.TEST: "test.txt"}


def _list_size(path: Path | None) -> int:
    """``max(remap_id) + 1`` of a ``user_list.txt`` / ``item_list.txt``; 0 when absent."""
    if path is None:
        return 0
    names, frame, line_numbers = read_delimited(
        path, " ", n_columns=2, header=True, expected="org_id remap_id"
    )
    if names != ["org_id", "remap_id"]:
        raise DataError(f"{path} line 1: expected the header 'org_id remap_id', got {names}")
    remap = frame["remap_id"]
    bad = ~remap.str.fullmatch(r"\d+")
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(
            f"{path} line {line_numbers[row]}: remap_id must be a non-negative integer, "
            f"got {remap.iloc[row]!r}"
        )
    return int(remap.astype("int64").max()) + 1 if len(remap) else 0


def _vocabulary_size(folder: Path, list_name: str, used: int, what: str) -> int:
    path = find_file(folder, list_name)
    listed = _list_size(path)
    if path is not None and used > listed:
        raise DataError(
            f"{path}: lists {listed} {what}s (remap_id 0..{listed - 1}) but the interaction "
            f"files use {what} id {used - 1}"
        )
    return max(used, listed)


def read_lightgcn(folder: Path, name: str = "lightgcn") -> Dataset:
    """Read ``train.txt`` + ``test.txt`` (+ optional id lists) from ``folder``."""
    folder = Path(folder)
    parts = {
        part: read_user_lines(require_file(folder, file_name, LINE_FORMAT), LINE_FORMAT)
        for part, file_name in SPLIT_FILES.items()
    }
    users = np.concatenate([lines.head_of_values() for lines in parts.values()])
    items = np.concatenate([lines.values for lines in parts.values()])
    given_parts = np.concatenate(
        [np.full(len(lines.values), part, dtype=np.int8) for part, lines in parts.items()]
    )
    all_heads = np.concatenate([lines.heads for lines in parts.values()])
    n_users = _vocabulary_size(folder, "user_list.txt", int(all_heads.max()) + 1, "user")
    n_items = _vocabulary_size(
        folder, "item_list.txt", int(items.max()) + 1 if len(items) else 0, "item"
    )
    # index == id: the vocabularies are 0..n-1 even where an id has no interaction
    interactions = integer_interactions(
        users, items, user_vocabulary=np.arange(n_users), item_vocabulary=np.arange(n_items)
    )
    return Dataset.build(name, interactions, None, given_parts)
