"""Batch top-k for every user, streamed to a Parquet file in chunks of users."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from semrec.models import Query, Recommender
from semrec.progress import progress
from semrec.serving.index import Retrieval

SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rank", pa.int32()),
        ("item_id", pa.string()),
        ("score", pa.float32()),
    ]
)


def write_all_user_recommendations(
    model: Recommender, retrieval: Retrieval, path: Path, k: int, batch_size: int = 1024
) -> int:
    """Top-k items of every known user (training items excluded) as rows ``user_id, rank,
    item_id, score`` (rank 1 = best), written ``batch_size`` users at a time into a temporary
    file beside ``path`` that is renamed into place when complete. Returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    user_ids = np.asarray(model.user_ids).astype(str)
    item_ids = np.asarray(model.item_ids).astype(str)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    rows = 0
    try:
        with (
            pq.ParquetWriter(temporary, SCHEMA) as writer,
            progress("Recommending", total=model.n_users) as advance,
        ):
            for start in range(0, model.n_users, batch_size):
                users = np.arange(start, min(start + batch_size, model.n_users))
                query = Query.users(users)
                top = retrieval.top_k(query, k, model.history_matrix(query))
                items = top.item_index.cpu().numpy()
                scores = top.scores.cpu().numpy()
                keep = np.isfinite(scores)  # users with fewer than k unseen items
                ranks = np.broadcast_to(np.arange(1, items.shape[1] + 1), items.shape)
                table = pa.table(
                    {
                        "user_id": user_ids[np.repeat(users, keep.sum(axis=1))],
                        "rank": ranks[keep].astype(np.int32),
                        "item_id": item_ids[items[keep]],
                        "score": scores[keep].astype(np.float32),
                    },
                    schema=SCHEMA,
                )
                writer.write_table(table)
                rows += len(table)
                advance(len(users))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return rows


def model_dir_of(path: Path) -> Path:
    """The saved model of a run directory (``path/model``), or ``path`` itself."""
    path = Path(path)
    return path / "model" if (path / "config.yaml").is_file() else path
