"""LC-Rec format (Zheng et al. ICDE 2024; also LETTER): Amazon-2018 Instruments, Arts, Games.

Files in one folder, named ``<D>.*`` (each may be gzip-compressed):

- ``<D>.inter.json``: ``{"<user_idx>": [item_idx, ...], ...}``, 0-based integer indices, each
  list in chronological order (no timestamps: row order is time order).
- ``<D>.item2id``: ``raw item id<TAB>item_idx`` (the ASIN for Amazon), no header. The raw id
  becomes the catalogue field ``asin``; the integer index stays the item id.
- ``<D>.user2id``: ``raw user id<TAB>user_idx``; not needed to load the interactions and not
  read (the data set object has no user catalogue).
- item text, optional, the first that exists:

  * ``<D>.item_text.jsonl``: ``{"item_idx", "asin", "title", "categories": [path]}`` one item a
    line (amazon-games-lcrec: titles joined by ASIN). Fields ``title``, ``categories``.
  * ``<D>.item.json``: LC-Rec's ``{"<item_idx>": {"title", "description", "brand",
    "categories"}}``. Check its order against ``item2id`` before trusting it: some public copies
    are not aligned with their ``inter.json``.

No split ships with the files (LC-Rec uses leave-one-out on each sequence).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from semrec.data.catalog import ItemCatalog
from semrec.data.dataset import Dataset
from semrec.data.formats._io import (
    category_text,
    check_same_asins,
    find_file,
    integer_column,
    integer_interactions,
    read_delimited,
    read_item_json,
    read_json,
    read_jsonl,
)
from semrec.errors import DataError

INTER_SUFFIX = ".inter.json"


def read_inter_json(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``{"user": [item, ...]}`` -> (user id per interaction, item id per interaction)."""
    sequences = read_json(path)
    if not isinstance(sequences, dict):
        raise DataError(f'{path}: expected a JSON object {{"<user_idx>": [item_idx, ...], ...}}')
    keys = pd.Series(list(sequences.keys()), dtype="str")
    bad_key = ~keys.str.fullmatch(r"\d{1,18}").to_numpy(dtype=bool, na_value=False)
    if bad_key.any():
        raise DataError(f"{path}: user key {keys[bad_key].iloc[0]!r} is not an integer index")
    lengths = np.fromiter(
        (len(v) if isinstance(v, list) else -1 for v in sequences.values()),
        dtype=np.int64,
        count=len(sequences),
    )
    if (lengths < 0).any():
        user = keys.iloc[int((lengths < 0).argmax())]
        raise DataError(f"{path}: user {user!r} must map to a list of item indices")
    try:
        items = np.fromiter(
            itertools.chain.from_iterable(sequences.values()), dtype=np.int64, count=lengths.sum()
        )
    except (TypeError, ValueError) as error:
        bad_user = next(
            key
            for key, values in sequences.items()
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        )
        raise DataError(
            f"{path}: user {bad_user!r} has a non-integer item index ({error})"
        ) from error
    if len(items) and items.min() < 0:
        raise DataError(f"{path}: negative item index {items.min()}")
    return np.repeat(keys.astype("int64").to_numpy(), lengths), items


def _item2id(path: Path) -> pd.DataFrame:
    _, frame, line_numbers = read_delimited(path, "\t", n_columns=2, expected="raw id<TAB>index")
    items = integer_column(frame[1], "index", path, line_numbers)
    duplicated = pd.Series(items).duplicated().to_numpy()
    if duplicated.any():
        row = int(duplicated.argmax())
        raise DataError(f"{path} line {line_numbers[row]}: index {items[row]} is listed twice")
    return pd.DataFrame({"item_id": items, "asin": frame[0].to_numpy(dtype=object)})


def _item_text_jsonl(path: Path) -> pd.DataFrame:
    frame, lines = read_jsonl(path, ["item_idx", "title"], "item_idx, asin, title, categories")
    text = pd.DataFrame({"item_id": integer_column(frame["item_idx"], "item_idx", path, lines)})
    if "asin" in frame:
        text["asin"] = frame["asin"].astype("str")
    text["title"] = frame["title"].astype("str")
    text["categories"] = [category_text(v) for v in frame.get("categories", [None] * len(frame))]
    return text


def _lcrec_item_json(path: Path) -> pd.DataFrame:
    fields, keys = read_item_json(path, "integer item index")
    text = pd.concat([pd.DataFrame({"item_id": keys}), fields], axis=1)
    return text


def _lcrec_catalog(folder: Path, dataset: str) -> ItemCatalog | None:
    index_path = find_file(folder, f"{dataset}.item2id")
    frame = None if index_path is None else _item2id(index_path)
    sources = [str(index_path)] if index_path is not None else []
    for suffix, reader in (("item_text.jsonl", _item_text_jsonl), ("item.json", _lcrec_item_json)):
        path = find_file(folder, f"{dataset}.{suffix}")
        if path is None:
            continue
        text = reader(path)
        if text["item_id"].duplicated().any():
            item = text.loc[text["item_id"].duplicated(), "item_id"].iloc[0]
            raise DataError(f"{path}: item {item} is described twice")
        if frame is not None and "asin" in text:
            check_same_asins(frame, text, path, index_path)
            text = text.drop(columns=["asin"])
        frame = text if frame is None else frame.merge(text, on="item_id", how="outer")
        sources.append(str(path))
        break
    if frame is None:
        return None
    frame = frame.sort_values("item_id").reset_index(drop=True)
    has_title = "title" in frame
    text_fields = [c for c in ("title", "description", "categories", "brand") if c in frame]
    text_template = ". ".join(f"{{{c}}}" for c in text_fields) if text_fields else None
    return ItemCatalog.from_frame(
        frame,
        "item_id",
        "{title}" if has_title else "{asin}",
        text_template,
        source=" + ".join(sources),
    )


def _dataset_prefix(folder: Path) -> str:
    names = sorted(
        p.name.removesuffix(".gz").removesuffix(INTER_SUFFIX)
        for p in folder.glob(f"*{INTER_SUFFIX}*")
        if p.name.removesuffix(".gz").endswith(INTER_SUFFIX)
    )
    if len(names) != 1:
        raise DataError(
            f"{folder}: expected exactly one <name>{INTER_SUFFIX} (LC-Rec format), "
            f"found {names or 'none'}"
        )
    return names[0]


def read_lcrec(folder: Path, name: str | None = None, *, dataset: str | None = None) -> Dataset:
    """Read the LC-Rec files of data set ``dataset`` (default: the one ``*.inter.json``)."""
    folder = Path(folder)
    dataset = dataset or _dataset_prefix(folder)
    path = find_file(folder, f"{dataset}{INTER_SUFFIX}")
    if path is None:
        raise DataError(
            f"{folder / (dataset + INTER_SUFFIX)}: file not found "
            '(expected {"<user_idx>": [item_idx, ...]}; .gz also accepted)'
        )
    users, items = read_inter_json(path)
    interactions = integer_interactions(users, items)
    catalog = _lcrec_catalog(folder, dataset)
    if catalog is not None and "asin" in catalog.fields:
        known = set(catalog.item_ids[catalog.fields["asin"].to_numpy() != ""])
        missing = [item for item in interactions.item_ids if item not in known]
        if missing:
            raise DataError(
                f"{find_file(folder, dataset + '.item2id')}: has no raw id for {len(missing)} "
                f"item index(es) used in {path.name}, e.g. {missing[:3]}"
            )
    return Dataset.build(name or dataset, interactions, catalog)
