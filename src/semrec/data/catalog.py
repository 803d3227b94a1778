"""ItemCatalog: what items mean, as text fields aligned to item indices."""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from semrec.errors import DataError


class _BlankForMissing(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


@dataclass(frozen=True, eq=False)
class ItemCatalog:
    """Per-item text fields, one row per item index (``fields.iloc[i]`` describes item ``i``).

    ``title_template`` renders a short display title, ``text_template`` the full text given to
    encoders; both are ``str.format`` templates over the field names, and a missing or empty
    field renders as an empty string.
    """

    item_ids: np.ndarray
    fields: pd.DataFrame
    title_template: str = "{title}"
    text_template: str | None = None
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if len(self.fields) != len(self.item_ids):
            raise DataError(
                f"catalog has {len(self.fields)} rows of fields for {len(self.item_ids)} items"
            )
        for template in (self.title_template, self.text_template):
            if template is None:
                continue
            unknown = sorted(set(_template_fields(template)) - set(self.fields.columns))
            if unknown:
                raise DataError(
                    f"template {template!r} names unknown field(s) {unknown}; "
                    f"fields are {list(self.fields.columns)}"
                )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        item_id_column: str,
        title_template: str,
        text_template: str | None = None,
        source: str = "",
    ) -> ItemCatalog:
        """Build from a table with one row per item; other columns become text fields."""
        if frame[item_id_column].duplicated().any():
            duplicates = frame.loc[frame[item_id_column].duplicated(), item_id_column]
            raise DataError(f"{source}: duplicate item ids {duplicates.head(5).tolist()}")
        fields = frame.drop(columns=[item_id_column]).fillna("").astype(str)
        return cls(
            item_ids=frame[item_id_column].astype(str).to_numpy(dtype=object),
            fields=fields.reset_index(drop=True),
            title_template=title_template,
            text_template=text_template,
            source=source,
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    def aligned_to(self, item_ids: np.ndarray) -> ItemCatalog:
        """Reorder to an item vocabulary; items the catalog lacks get empty fields."""
        positions = pd.Index(self.item_ids).get_indexer(np.asarray(item_ids).astype(str))
        fields = self.fields.iloc[np.maximum(positions, 0)].reset_index(drop=True)
        fields.loc[positions < 0, :] = ""
        return ItemCatalog(
            item_ids=np.asarray(item_ids, dtype=object),
            fields=fields,
            title_template=self.title_template,
            text_template=self.text_template,
            source=self.source,
        )

    def render(
        self, template: str | None = None, item_index: Sequence[int] | np.ndarray | None = None
    ) -> list[str]:
        """Render items as strings (default ``text_template``, else ``name: value`` per field)."""
        rows = self.fields if item_index is None else self.fields.iloc[np.asarray(item_index)]
        template = template or self.text_template
        if template is None:
            columns = list(rows.columns)
            return [
                ". ".join(f"{c}: {v}" for c, v in zip(columns, values, strict=True) if v)
                for values in rows.itertuples(index=False, name=None)
            ]
        return [template.format_map(_BlankForMissing(r)) for r in rows.to_dict("records")]

    def titles(self, item_index: Sequence[int] | np.ndarray | None = None) -> list[str]:
        return self.render(self.title_template, item_index)

    def text_coverage(self) -> float:
        """Fraction of items with a non-empty text field among those ``text_template`` uses.

        Without a text template there is no text to encode (identifier fields such as an
        ASIN are not text), so coverage is 0.
        """
        if not len(self) or self.text_template is None:
            return 0.0
        fields = self.fields[sorted(set(_template_fields(self.text_template)))]
        filled = fields.apply(lambda column: column.str.strip() != "")
        return float(filled.any(axis=1).mean())
