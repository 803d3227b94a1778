"""On-disk cache of item embeddings, keyed by what determines them.

Encoding a catalogue takes minutes on a CPU, so a matrix is computed once per
(model identity, text template, content of the rendered texts) and then read back. Changing
the model, the template or any item's text changes the key, so a stale matrix is never
served. Files are safetensors (no pickle) written atomically; a file that cannot be read or
does not match its key is treated as absent and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from semrec import __version__
from semrec.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

#: Bumped when the cache layout or the meaning of a key changes; old files are then ignored.
CACHE_FORMAT = "semrec-embeddings-1"
TENSOR = "embeddings"


def default_cache_dir(env_cache_dir: str | None = None) -> Path:
    """semrec's cache folder: the ``SEMREC_CACHE`` value the caller passes, else ~/.cache/semrec.

    Library code never reads the environment itself; the CLI passes ``$SEMREC_CACHE`` in.
    """
    return Path(env_cache_dir or Path.home() / ".cache" / "semrec").expanduser()


@dataclass(frozen=True)
class CacheKey:
    """What determines an embedding matrix: the model, the template and the texts, in order."""

    model: str
    template: str
    texts_sha256: str
    n_texts: int

    @classmethod
    def of(cls, model: str, template: str, texts: list[str]) -> CacheKey:
        # JSON keeps the boundaries between texts unambiguous
        content = json.dumps(texts, ensure_ascii=False).encode("utf-8")
        return cls(model, template, hashlib.sha256(content).hexdigest(), len(texts))

    @property
    def metadata(self) -> dict[str, str]:
        return {
            "format": CACHE_FORMAT,
            "model": self.model,
            "template": self.template,
            "texts_sha256": self.texts_sha256,
        }

    @property
    def filename(self) -> str:
        """Starts with the model name so that people can tell the files apart."""
        digest = hashlib.sha256(json.dumps(self.metadata).encode("utf-8")).hexdigest()[:24]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model).strip("_")[-48:]
        return f"{slug}-{digest}.safetensors"


class EmbeddingCache:
    """Embedding matrices under ``<cache_dir>/embeddings/``, one safetensors file per key."""

    def __init__(self, cache_dir: Path) -> None:
        self.directory = Path(cache_dir).expanduser() / "embeddings"

    def path(self, key: CacheKey) -> Path:
        return self.directory / key.filename

    def load(self, key: CacheKey) -> np.ndarray | None:
        """The cached [n_texts, dim] float32 matrix, or None when absent or unusable."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with safe_open(path, framework="np") as stored:
                metadata = stored.metadata() or {}
                vectors = stored.get_tensor(TENSOR)
        except (OSError, SafetensorError) as error:
            log.warning("ignoring unreadable embedding cache file %s: %s", path, error)
            return None
        if any(metadata.get(name) != value for name, value in key.metadata.items()) or (
            vectors.ndim != 2 or len(vectors) != key.n_texts or vectors.dtype != np.float32
        ):
            log.warning("ignoring embedding cache file %s: it does not match its key", path)
            return None
        return vectors

    def save(self, key: CacheKey, vectors: np.ndarray) -> Path:
        """Write atomically, so a crash or a concurrent reader never sees half a file."""
        path = self.path(key)
        tensors = {TENSOR: np.ascontiguousarray(vectors, dtype=np.float32)}
        write_bytes_atomic(path, save(tensors, metadata={**key.metadata, "semrec": __version__}))
        return path
