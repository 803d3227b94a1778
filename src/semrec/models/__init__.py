"""Recommender models behind one protocol (see :mod:`semrec.models.base`) and their registry."""

from semrec.models import (  # noqa: F401  (registers the models)
    alpharec,
    baselines,
    graph,
    mf,
    sasrec,
    text,
)
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
from semrec.models.generative import seq2seq  # noqa: F401  (registers tiger)

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
