"""Data layer: load, validate, index, filter and split interaction data and item text."""

from semrec.data.catalog import ItemCatalog
from semrec.data.dataset import Dataset, Part
from semrec.data.interactions import Interactions

__all__ = ["Dataset", "Interactions", "ItemCatalog", "Part"]
