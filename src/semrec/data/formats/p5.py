"""P5 / S3-Rec sequential format (Geng et al. RecSys 2022; Zhou et al. CIKM 2020): Amazon-2014
Beauty / Sports / Toys and Yelp as used by P5, TIGER, LETTER, IDGenRec.

Files in one folder (each may be gzip-compressed):

- ``sequential.txt`` or ``sequential_data.txt``: one line per user, ``user_id item_id ...``,
  1-based integer ids, items in chronological order (repeats allowed). There are no timestamps:
  row order is time order, which :meth:`Interactions.sequences` follows.
- ``datamaps.json`` (optional): ``{"id2item": {"1": ASIN, ...}, "id2user": ...}``. The P5
  integer id stays the item id; the raw id (ASIN, or Yelp business id) becomes the catalogue
  field ``id_field``.
- item text, the first of these that exists:

  * ``<Name>.item_text.jsonl``: ``{"item_id": 1-based id, "title", "categories": [[path]]}``
    (amazon-beauty-p5; titles joined from TransRec). Fields ``title``, ``categories``.
  * ``<Name>.item.json``: LETTER's ``{"<k>": {"title", "description"}}`` keyed by the 0-based
    ``k = item_id - 1`` (yelp-p5, where ``description`` holds the business categories).
  * ``<Name>.idgenrec_textid.jsonl``: ``{"item_id", "asin", "idgenrec_textid"}`` (amazon-sports-p5).
    **These are not titles**: IDGenRec's generated keyword IDs (about five words derived from
    the item's metadata). They are loaded as the field ``keywords`` and used as the encoder
    text (weak semantics); the display title is the raw id. Report results on them as
    "IDGenRec keyword IDs", never as item titles.

No split ships with the files (the usual protocol is leave-one-out on each sequence).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from semrec.data.catalog import ItemCatalog
from semrec.data.dataset import Dataset
from semrec.data.formats._io import (
    category_text,
    check_same_asins,
    find_file,
    integer_column,
    integer_interactions,
    read_item_json,
    read_json,
    read_jsonl,
    read_user_lines,
)
from semrec.errors import DataError

SEQUENCE_FILES = ("sequential.txt", "sequential_data.txt")
LINE_FORMAT = "user_id item_id item_id ..., 1-based"


def _find_suffix(folder: Path, suffix: str) -> Path | None:
    matches = sorted(folder.glob(f"*{suffix}")) + sorted(folder.glob(f"*{suffix}.gz"))
    return matches[0] if matches else None


def _datamap_items(path: Path) -> pd.DataFrame:
    datamaps = read_json(path)
    if not isinstance(datamaps, dict) or not isinstance(datamaps.get("id2item"), dict):
        raise DataError(f"{path}: expected a JSON object with an 'id2item' mapping")
    id2item = datamaps["id2item"]
    keys = pd.Series(list(id2item.keys()), dtype="str")
    bad = ~keys.str.fullmatch(r"\d+").to_numpy(dtype=bool, na_value=False)
    if bad.any():
        raise DataError(f"{path}: id2item key {keys[bad].iloc[0]!r} is not an integer item id")
    return pd.DataFrame(
        {"item_id": keys.astype("int64").to_numpy(), "raw_id": list(id2item.values())}
    )


def _item_text_jsonl(path: Path) -> tuple[pd.DataFrame, str | None]:
    frame, lines = read_jsonl(path, ["item_id", "title"], "item_id, title, categories")
    text = pd.DataFrame({"item_id": integer_column(frame["item_id"], "item_id", path, lines)})
    if "asin" in frame:
        text["asin"] = frame["asin"].astype("str")
    text["title"] = frame["title"].astype("str")
    text["categories"] = [category_text(v) for v in frame.get("categories", [None] * len(frame))]
    return text, "{title}. {categories}"


def _letter_item_json(path: Path) -> tuple[pd.DataFrame, str | None]:
    fields, keys = read_item_json(path, "0-based integer item id")
    if "title" not in fields:
        raise DataError(f"{path}: items have no 'title' field")
    text = pd.concat([pd.DataFrame({"item_id": keys + 1}), fields], axis=1)
    return text, "{title}. {description}" if "description" in fields else "{title}"


def _idgenrec_keywords(path: Path) -> tuple[pd.DataFrame, str | None]:
    frame, lines = read_jsonl(path, ["item_id", "idgenrec_textid"], "item_id, idgenrec_textid")
    text = pd.DataFrame({"item_id": integer_column(frame["item_id"], "item_id", path, lines)})
    if "asin" in frame:
        text["asin"] = frame["asin"].astype("str")
    text["keywords"] = frame["idgenrec_textid"].astype("str")
    return text, "{keywords}"


TEXT_READERS = (
    (".item_text.jsonl", _item_text_jsonl),
    (".item.json", _letter_item_json),
    (".idgenrec_textid.jsonl", _idgenrec_keywords),
)


def _item_text(folder: Path) -> tuple[pd.DataFrame, str | None, Path] | None:
    for suffix, reader in TEXT_READERS:
        path = _find_suffix(folder, suffix)
        if path is not None:
            text, text_template = reader(path)
            duplicated = text["item_id"].duplicated()
            if duplicated.any():
                item = text.loc[duplicated, "item_id"].iloc[0]
                raise DataError(f"{path}: item {item} is described twice")
            return text, text_template, path
    return None


def _p5_catalog(folder: Path, id_field: str) -> tuple[ItemCatalog | None, set[str] | None]:
    """The catalogue and the item ids datamaps.json knows (None without datamaps)."""
    datamaps_path = find_file(folder, "datamaps.json")
    found = _item_text(folder)
    if datamaps_path is None and found is None:
        return None, None
    sources = []
    text_template = None
    frame = None
    if datamaps_path is not None:
        frame = _datamap_items(datamaps_path).rename(columns={"raw_id": id_field})
        sources.append(str(datamaps_path))
    if found is not None:
        text, text_template, text_path = found
        sources.append(str(text_path))
        if "asin" in text and frame is not None and id_field == "asin":
            check_same_asins(frame, text, text_path, datamaps_path)
        if frame is not None:
            text = text.drop(columns=["asin"], errors="ignore")
        elif "asin" in text:
            text = text.rename(columns={"asin": id_field})
        frame = text if frame is None else frame.merge(text, on="item_id", how="outer")
    columns = list(frame.columns)
    title_field = "title" if "title" in columns else id_field if id_field in columns else None
    title_template = f"{{{title_field or columns[1]}}}"
    frame = frame.sort_values("item_id").reset_index(drop=True)
    catalog = ItemCatalog.from_frame(
        frame, "item_id", title_template, text_template, source=" + ".join(sources)
    )
    known = None if datamaps_path is None else set(catalog.item_ids[frame[id_field].notna()])
    return catalog, known


def read_p5(folder: Path, name: str = "p5", *, id_field: str = "asin") -> Dataset:
    """Read a P5 folder: sequences, optional ``datamaps.json`` and item text (see module doc).

    ``id_field`` names the catalogue field that holds ``datamaps.id2item`` (``"asin"`` for
    Amazon, ``"business_id"`` for Yelp).
    """
    folder = Path(folder)
    path = next((p for p in (find_file(folder, f) for f in SEQUENCE_FILES) if p is not None), None)
    if path is None:
        raise DataError(
            f"{folder}: no P5 sequence file; expected one of {list(SEQUENCE_FILES)} "
            f"(.gz also accepted) with lines of {LINE_FORMAT}"
        )
    lines = read_user_lines(path, LINE_FORMAT, base=1)
    interactions = integer_interactions(lines.head_of_values(), lines.values)
    catalog, known_items = _p5_catalog(folder, id_field)
    if known_items is not None:
        missing = [item for item in interactions.item_ids if item not in known_items]
        if missing:
            raise DataError(
                f"{path}: {len(missing)} item id(s) are missing from datamaps.json id2item, "
                f"e.g. {missing[:3]}"
            )
    return Dataset.build(name, interactions, catalog)
