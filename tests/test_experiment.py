"""The experiment layer: item vectors for text models, the cold-start warning, and the
training monitor."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from semrec.config import EncoderConfig, ExperimentConfig, build_config, dump_config
from semrec.data import Dataset, Interactions
from semrec.data.splits import ColdItemSplit, LeaveOneOutSplit, split
from semrec.errors import ConfigError
from semrec.experiment import (
    CONFIG_FILE,
    encode_texts_like_training,
    fit_timed,
    prepare_item_embeddings,
    refuse_foreign_checkpoint,
    run_experiment,
    warn_if_cold_items_without_text,
)
from semrec.models import MODEL_REGISTRY
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


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_the_training_monitor_follows_exclude_seen(tmp_path, exclude_seen):
    # each user visits i, i+1, i again, then i+2: leave-one-out makes the repeat visit the
    # validation item, which only a ranking that keeps seen items can hit
    users = np.repeat(np.arange(25), 4)
    items = np.stack([np.arange(25), np.arange(1, 26) % 25, np.arange(25), np.arange(2, 27) % 25])
    interactions = Interactions.from_ids(users, items.T.ravel())
    dataset = Dataset("repeats", interactions, None)
    data_split = split(dataset, LeaveOneOutSplit())
    model = MODEL_REGISTRY["lightgcn"](epochs=1, batch_size=16, embedding_size=8, eval_every=1)
    fit_timed(model, dataset, data_split, tmp_path, exclude_seen=exclude_seen)
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    recall = history[0]["valid_recall@20"]
    assert recall == 0.0 if exclude_seen else recall > 0.0


def test_a_checkpoint_resumes_only_the_experiment_that_wrote_it(tmp_path):
    raw = {
        "name": "lightgcn-run",
        "dataset": {"name": "ml-100k"},
        "model": {"name": "lightgcn", "params": {"weight_decay": 3e-4}},
        "output": {"dir": str(tmp_path)},
    }
    written = build_config(raw)
    run_dir = tmp_path / "lightgcn-run"
    (run_dir / "training" / "checkpoint").mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text(dump_config(written))
    refuse_foreign_checkpoint(run_dir, written)  # the same experiment resumes
    # evaluation settings do not shape training
    refuse_foreign_checkpoint(run_dir, build_config(raw, ["evaluation.ks=[5]"]))
    other = build_config(raw, ["model.params.weight_decay=2.0e-4"])
    with pytest.raises(ConfigError, match=r"model\.params\.weight_decay: 0\.0003 -> 0\.0002"):
        run_experiment(other)
    assert (run_dir / CONFIG_FILE).read_text() == dump_config(written)  # left as it was
