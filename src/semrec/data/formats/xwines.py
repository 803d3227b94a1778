"""X-Wines (de Azambuja et al., BDCC 2023): ratings CSV + wine catalogue CSV. CC0."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from semrec.data.catalog import ItemCatalog
from semrec.data.dataset import Dataset
from semrec.data.formats._io import read_csv_checked, require_numeric
from semrec.data.interactions import Interactions
from semrec.errors import DataError

RATING_COLUMNS = ["UserID", "WineID", "Rating", "Date"]
WINE_COLUMNS = ["WineID", "WineName", "WineryName", "Type", "Grapes", "Harmonize"]
TITLE_TEMPLATE = "{WineName} — {WineryName}"
TEXT_TEMPLATE = (
    "{WineName} by {WineryName}. {Type} wine from {RegionName}, {Country}. "
    "Grapes: {Grapes}. Pairs with: {Harmonize}. {Body}, {Acidity} acidity, {ABV}% ABV."
)


def _join_list_literal(cell: str, path: Path, line: int, column: str) -> str:
    """``"['Pork', 'Rich Fish']"`` -> ``"Pork, Rich Fish"``."""
    try:
        values = ast.literal_eval(cell)
    except (ValueError, SyntaxError) as error:
        raise DataError(f"{path} line {line}: column {column!r} is not a list literal") from error
    if not isinstance(values, list):
        raise DataError(f"{path} line {line}: column {column!r} must be a list, got {cell!r}")
    return ", ".join(str(value) for value in values)


def read_wines(path: Path) -> ItemCatalog:
    frame = read_csv_checked(path, WINE_COLUMNS, dtype=str, keep_default_na=False)
    for column in ("Grapes", "Harmonize"):
        frame[column] = [
            _join_list_literal(cell, path, row + 2, column)
            for row, cell in enumerate(frame[column])
        ]
    frame = frame.drop(columns=[c for c in ("Vintages", "Website", "Code") if c in frame])
    return ItemCatalog.from_frame(frame, "WineID", TITLE_TEMPLATE, TEXT_TEMPLATE, source=str(path))


def read_ratings(path: Path) -> Interactions:
    frame = read_csv_checked(path, RATING_COLUMNS)
    users = require_numeric(frame, "UserID", path, integer=True)
    items = require_numeric(frame, "WineID", path, integer=True)
    ratings = require_numeric(frame, "Rating", path)
    dates = pd.to_datetime(frame["Date"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    if dates.isna().any():
        row = int(dates.isna().to_numpy().argmax())
        raise DataError(
            f"{path} line {row + 2}: column 'Date' must be 'YYYY-MM-DD HH:MM:SS', "
            f"got {frame['Date'].iloc[row]!r}"
        )
    seconds = dates.to_numpy(dtype="datetime64[s]").astype("int64")
    return Interactions.from_ids(users.to_numpy(), items.to_numpy(), ratings.to_numpy(), seconds)


def read_xwines(ratings_path: Path, wines_path: Path, name: str = "xwines") -> Dataset:
    """Read an X-Wines ratings file and its wine catalogue (Slim or Test version)."""
    interactions = read_ratings(ratings_path)
    catalog = read_wines(wines_path)
    missing = set(interactions.item_ids) - set(catalog.item_ids)
    if missing:
        raise DataError(
            f"{ratings_path}: {len(missing)} rated wine(s) missing from {wines_path}, "
            f"e.g. {sorted(missing)[:3]}"
        )
    return Dataset.build(name, interactions, catalog)
