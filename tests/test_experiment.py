"""The experiment layer: item vectors for text models, and the cold-start warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from semrec.config import EncoderConfig, ExperimentConfig
from semrec.data.splits import ColdItemSplit, split
from semrec.errors import ConfigError
from semrec.experiment import (
    encode_texts_like_training,
    prepare_item_embeddings,
    warn_if_cold_items_without_text,
)
from semrec.models.baselines import MostPop
from semrec.models.text import TextKNN

VECTORS = Path(__file__).parent / "fixtures" / "embeddings" / "xwines-minilm.safetensors"


def test_precomputed_vectors_follow_the_filtered_item_order(small_dataset):
    vectors = prepare_item_embeddings(EncoderConfig(embeddings=VECTORS), small_dataset)
    assert vectors.shape == (small_dataset.interactions.n_items, 384)
    assert abs(float((vectors**2).sum(1).mean()) - 1) < 1e-3  # unit rows


def test_free_text_needs_the_model_that_made_precomputed_vectors():
    config = ExperimentConfig.model_validate(
        {
            "name": "x",
            "dataset": {"name": "xwines"},
            "encoder": {"embeddings": str(VECTORS)},
            "model": {"name": "alpharec"},
        }
    )
    with pytest.raises(ConfigError, match=r"set encoder\.model"):
        encode_texts_like_training(config, ["a red wine"])


def test_cold_items_warn_only_for_models_without_text(small_dataset, caplog):
    cold = split(small_dataset, ColdItemSplit(item_ratio=0.2, seed=3))
    with caplog.at_level(logging.WARNING, logger="semrec.experiment"):
        warn_if_cold_items_without_text(TextKNN(), cold)
        assert not caplog.records
        warn_if_cold_items_without_text(MostPop(), cold)
    (record,) = caplog.records
    assert "most_pop (no item text) cannot tell them apart" in record.getMessage()
