"""Serving saved models: an HTTP API (FastAPI), exact or FAISS retrieval, batch top-k.

``semrec.serving.app`` imports FastAPI; import it only where serving is wanted.
"""

from semrec.serving.batch import write_all_user_recommendations
from semrec.serving.index import (
    FAISS_MIN_ITEMS,
    ExactRetrieval,
    FaissRetrieval,
    Retrieval,
    choose_retrieval,
    measure_recall,
)

__all__ = [
    "FAISS_MIN_ITEMS",
    "ExactRetrieval",
    "FaissRetrieval",
    "Retrieval",
    "choose_retrieval",
    "measure_recall",
    "write_all_user_recommendations",
]
