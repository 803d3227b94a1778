"""Recommender models behind one protocol (see :mod:`semrec.models.base`) and their registry."""

from semrec.models import alpharec, baselines, graph, mf, text  # noqa: F401  (registers the models)
from semrec.models.base import (
    MODEL_REGISTRY,
    Query,
    Recommender,
    TopK,
    TrainData,
    load_model,
    model_class,
    top_k,
)

__all__ = [
    "MODEL_REGISTRY",
    "Query",
    "Recommender",
    "TopK",
    "TrainData",
    "load_model",
    "model_class",
    "top_k",
]
