"""Encoders: item text -> vectors (sentence-transformers, cached on disk), or vectors brought
from a file. Output rows follow the catalogue's item order.
"""

from semrec.encoders.base import TextEncoder, l2_normalize
from semrec.encoders.cache import EmbeddingCache, default_cache_dir
from semrec.encoders.precomputed import load_embeddings
from semrec.encoders.text import (
    DEFAULT_MODEL,
    EncodedItems,
    SentenceEncoder,
    encode_catalog,
    encode_texts,
    packaged_default_model,
    resolve_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "EmbeddingCache",
    "EncodedItems",
    "SentenceEncoder",
    "TextEncoder",
    "default_cache_dir",
    "encode_catalog",
    "encode_texts",
    "l2_normalize",
    "load_embeddings",
    "packaged_default_model",
    "resolve_model",
]
