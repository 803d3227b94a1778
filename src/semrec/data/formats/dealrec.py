"""DEALRec / BIGRec sequential split format (Lin et al. SIGIR 2024): Amazon-2018 Games,
MicroLens-50K.

Files in one folder (each may be gzip-compressed):

- ``sequential_train.txt``, ``sequential_valid.txt``, ``sequential_test.txt``: one line per user,
  ``user_id item_id ...``, 1-based ids, chronological; a line with only the user id means the
  user has nothing in that split. Rows are marked TRAIN / VALID / TEST in ``given_parts`` (the
  split as distributed: each user's latest interactions held out). Every user listed in any
  file exists, even one without interactions. Within a user, rows are ordered train, valid,
  test, which is time order (there are no timestamps).
- ``items.jsonl``: ``{"seq_item_id": 1-based id, "title", ...}`` one item a line; other keys
  (``asin``, ``microlens_item_id``, ``categories``, ...) become catalogue fields, except
  ``rec_item_id`` (= ``seq_item_id - 1``).
- ``users.tsv`` (``user_id<TAB>raw user id``) is not read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from semrec.data.catalog import ItemCatalog
from semrec.data.dataset import Dataset, Part
from semrec.data.formats._io import (
    category_text,
    find_file,
    integer_column,
    integer_interactions,
    read_jsonl,
    read_user_lines,
    require_file,
)
from semrec.errors import DataError

LINE_FORMAT = "user_id item_id item_id ..., 1-based; a bare user id = nothing in this split"
SPLIT_FILES = {part: f"sequential_{part.name.lower()}.txt" for part in Part}


def read_items(path: Path) -> ItemCatalog:
    frame, lines = read_jsonl(path, ["seq_item_id", "title"], "seq_item_id, title, ...")
    items = pd.DataFrame(
        {"item_id": integer_column(frame["seq_item_id"], "seq_item_id", path, lines)}
    )
    duplicated = items["item_id"].duplicated().to_numpy()
    if duplicated.any():
        row = int(duplicated.argmax())
        raise DataError(f"{path} line {lines[row]}: item {items['item_id'][row]} is listed twice")
    for column in frame.columns.drop(["seq_item_id", "rec_item_id"], errors="ignore"):
        items[column] = [category_text(value) for value in frame[column]]
    text_fields = [c for c in ("title", "categories") if c in items]
    return ItemCatalog.from_frame(
        items,
        "item_id",
        "{title}",
        ". ".join(f"{{{c}}}" for c in text_fields),
        source=str(path),
    )


def read_dealrec(folder: Path, name: str = "dealrec") -> Dataset:
    """Read the three split files and ``items.jsonl`` from ``folder``."""
    folder = Path(folder)
    users, items, parts, listed_users = [], [], [], []
    for part, file_name in SPLIT_FILES.items():
        path = require_file(folder, file_name, LINE_FORMAT)
        lines = read_user_lines(path, LINE_FORMAT, base=1)
        users.append(lines.head_of_values())
        items.append(lines.values)
        parts.append(np.full(len(lines.values), part, dtype=np.int8))
        listed_users.append(lines.heads)
    items_path = find_file(folder, "items.jsonl")
    catalog = None if items_path is None else read_items(items_path)
    all_items = np.concatenate(items)
    if catalog is not None:
        missing = np.setdiff1d(all_items, catalog.item_ids.astype(np.int64))
        if len(missing):
            raise DataError(
                f"{items_path}: lacks {len(missing)} item id(s) used in the split files, "
                f"e.g. {missing[:3].tolist()}"
            )
    interactions = integer_interactions(
        np.concatenate(users), all_items, user_vocabulary=np.concatenate(listed_users)
    )
    return Dataset.build(name, interactions, catalog, np.concatenate(parts))
