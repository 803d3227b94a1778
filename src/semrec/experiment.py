"""Run an experiment config end to end: data -> split -> fit -> evaluate -> ``runs/<name>/``.

A run directory holds ``config.yaml`` (resolved), ``metrics.json``, ``per_user.safetensors``
(per-user metrics and top-K lists, for slices and significance tests), ``model/`` (the saved
model), ``report.md``, ``report.html`` (self-contained, plots embedded) and ``train.log``.
Each file is written atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

import semrec
from semrec.atomic import write_text_atomic
from semrec.config import (
    DatasetConfig,
    EncoderConfig,
    EvaluationConfig,
    ExperimentConfig,
    dump_config,
    load_config,
)
from semrec.data import Dataset
from semrec.data.registry import load_dataset
from semrec.data.splits import Split, filter_min_rating, k_core, split
from semrec.encoders import (
    DEFAULT_MODEL,
    SentenceEncoder,
    default_cache_dir,
    encode_catalog,
    l2_normalize,
    load_embeddings,
)
from semrec.errors import ConfigError, ModelError
from semrec.evaluation import EvaluationResult, evaluate
from semrec.evaluation.html import write_run_html
from semrec.evaluation.report import markdown_table, metric_columns, render_report
from semrec.evaluation.store import PER_USER_FILE, save_per_user
from semrec.models import Recommender, TrainData, load_model, model_class

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
MODEL_DIR = "model"


@dataclass(frozen=True)
class DataLocation:
    """Where named data sets are looked for: ``--data-dir`` and the SEMREC_DATA value."""

    data_dir: Path | None = None
    env_data_dir: str | None = None


def prepare_dataset(config: DatasetConfig, location: DataLocation = DataLocation()) -> Dataset:
    columns = None if config.columns is None else config.columns.model_dump()
    dataset = load_dataset(
        config.name,
        data_dir=location.data_dir,
        env_data_dir=location.env_data_dir,
        format=config.format,
        columns=columns,
    )
    if config.min_rating is not None:
        dataset = filter_min_rating(dataset, config.min_rating)
    if config.k_core is not None:
        dataset = k_core(dataset, config.k_core)
    return dataset


def reset_peak_memory() -> None:
    """Start a new peak-memory window: the resident-set peak on Linux (where the kernel
    allows it; elsewhere the peak stays the process's), and torch's CUDA peak counter."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mib() -> dict[str, float]:
    """Peak resident memory (``rss``) since the last reset, and peak CUDA memory allocated by
    torch (``cuda``) when a GPU is present, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    except OSError:
        pass
    peaks = {"rss": round(rss, 1)}
    if torch.cuda.is_available():
        peaks["cuda"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peaks


def device_description(device: torch.device) -> str:
    """The device a figure was measured on, in words: the GPU model, or the CPU threads."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads, {cpu_model()})"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def prepare_item_embeddings(config: EncoderConfig, dataset: Dataset) -> np.ndarray:
    """Item vectors in the data set's item order: read from ``config.embeddings``, or the
    catalogue's texts encoded (and cached) by ``config.model``."""
    item_ids = dataset.interactions.item_ids
    if config.embeddings is not None:
        # vectors of items that filtering removed are ignored; missing items are an error
        return load_embeddings(config.embeddings, item_ids, ids_path=config.ids, allow_extra=True)
    if dataset.catalog is None:
        raise ConfigError(
            f"{dataset.name}: has no item catalogue, so there is no item text to encode; "
            "set encoder.embeddings to a file of vectors keyed by item id"
        )
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # Rich shows our own bar
    cache_dir = config.cache_dir or default_cache_dir(os.environ.get("SEMREC_CACHE"))
    encoded = encode_catalog(
        dataset.catalog,
        SentenceEncoder(config.model or DEFAULT_MODEL),
        cache_dir=cache_dir,
        template=config.template,
        batch_size=config.batch_size,
    )
    return encoded.embeddings


def intention_encoder(config: ExperimentConfig) -> SentenceEncoder:
    """The encoder the run's model was trained with (loaded on first use), for free texts."""
    encoder = config.encoder or EncoderConfig()
    if encoder.embeddings is not None and encoder.model is None:
        raise ConfigError(
            f"run {config.name} was trained on precomputed vectors ({encoder.embeddings}); "
            "free text must be encoded by the model that produced them: set encoder.model "
            "in the run's config.yaml to it"
        )
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return SentenceEncoder(encoder.model or DEFAULT_MODEL)


def encode_texts_like_training(config: ExperimentConfig, texts: list[str]) -> np.ndarray:
    """Free texts (user intentions) as unit vectors from the encoder the run's model was
    trained with."""
    return l2_normalize(intention_encoder(config).encode(texts))


MONITOR_KS = (20,)


def fit_timed(
    model: Recommender,
    dataset: Dataset,
    data_split: Split,
    work_dir: Path | None = None,
    item_embeddings: np.ndarray | None = None,
    exclude_seen: bool = True,
) -> float:
    """Fit and return seconds. Iterative models are monitored on the validation part, or,
    where the split has none (paper protocols such as LightGCN's), on the test part: that
    curve is recorded for learning curves only, never used to pick an epoch. ``exclude_seen``
    is the evaluation's (False for repeat-consumption data)."""
    part = "valid" if data_split.valid is not None else "test"

    def monitor() -> dict[str, float]:
        metrics = evaluate(
            model, data_split, ks=MONITOR_KS, part=part, exclude_seen=exclude_seen
        ).metrics
        return {
            f"{part}_{name}": value
            for name, value in metrics.items()
            if name.split("@")[0] in ("recall", "ndcg")
        }

    started = time.perf_counter()
    model.fit(
        TrainData(
            data_split.train,
            dataset.catalog,
            data_split.valid,
            monitor,
            work_dir,
            item_embeddings,
        )
    )
    return time.perf_counter() - started


def warn_if_cold_items_without_text(model: Recommender, data_split: Split) -> None:
    """Cold-start items are only told apart through item text: say so for a model without it
    (it still runs, as the baseline of the cold-start comparison)."""
    if data_split.protocol.get("protocol") != "cold_items" or model.needs_item_embeddings:
        return
    log.warning(
        "cold_items split: the %s held-out items have no training interactions, so %s "
        "(no item text) cannot tell them apart; its ranking of them is by its untrained/zero "
        "scores, i.e. near-random (all-equal scores fall back to item-index order)",
        data_split.protocol.get("n_held_out_items", "?"),
        model.name,
    )


#: the config sections that decide what a training checkpoint holds
TRAINING_SECTIONS = ("dataset", "split", "encoder", "model")


def refuse_foreign_checkpoint(run_dir: Path, config: ExperimentConfig) -> None:
    """A run directory's training checkpoint resumes only the experiment that wrote it: raise
    when its stored config differs from ``config`` in a section that shapes training."""
    stored_path = run_dir / CONFIG_FILE
    if not (run_dir / "training" / "checkpoint").exists() or not stored_path.is_file():
        return
    try:
        stored = load_config(stored_path)
    except ConfigError as error:
        log.warning("cannot compare with the checkpoint's config (%s); resuming anyway", error)
        return

    def flat(tree: Any, prefix: str) -> dict[str, Any]:
        if not isinstance(tree, dict):
            return {prefix: tree}
        return {
            k: v for key, value in tree.items() for k, v in flat(value, f"{prefix}.{key}").items()
        }

    before, after = (
        flat({k: v for k, v in c.model_dump(mode="json").items() if k in TRAINING_SECTIONS}, "")
        for c in (stored, config)
    )
    changed = [
        f"{key.lstrip('.')}: {before.get(key)!r} -> {after.get(key)!r}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
    if changed:
        raise ConfigError(
            f"{run_dir}: holds a training checkpoint of a different experiment "
            f"({'; '.join(changed[:5])}); resuming would continue that training. Give this "
            f"experiment another `name`, or delete {run_dir / 'training'} to start over"
        )


def run_experiment(config: ExperimentConfig, location: DataLocation = DataLocation()) -> Path:
    """Train and evaluate one model; returns the run directory. A run directory with a
    training checkpoint of the same experiment resumes it (another experiment's is refused)."""
    run_dir = Path(config.output.dir) / config.name
    refuse_foreign_checkpoint(run_dir, config)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / CONFIG_FILE, dump_config(config))
    handler = logging.FileHandler(run_dir / "train.log", mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("semrec").addHandler(handler)
    try:
        dataset = prepare_dataset(config.dataset, location)
        data_split = split(dataset, config.split)
        log.info("data %s, split %s", dataset.summary(), data_split.summary())
        model = model_class(config.model.name)(**config.model.params)
        warn_if_cold_items_without_text(model, data_split)
        encoder = config.encoder
        if encoder is None and model.needs_item_embeddings:
            encoder = EncoderConfig()
            log.info("%s reads item text: encoding it with the default encoder", model.name)
        embeddings = None if encoder is None else prepare_item_embeddings(encoder, dataset)
        reset_peak_memory()
        fit_seconds = fit_timed(
            model,
            dataset,
            data_split,
            run_dir / "training",
            embeddings,
            config.evaluation.exclude_seen,
        )
        fit_memory = peak_memory_mib()  # includes the monitor's evaluations during training
        reset_peak_memory()
        result = evaluate_as_configured(model, data_split, config.evaluation)
        memory = {"fit": fit_memory, "evaluate": peak_memory_mib()}
        log.info("metrics %s", result.metrics)
        model.save(run_dir / MODEL_DIR)
        write_run_results(run_dir, config, dataset, data_split, model, result, fit_seconds, memory)
    finally:
        logging.getLogger("semrec").removeHandler(handler)
        handler.close()
    return run_dir


def evaluate_as_configured(
    model: Recommender,
    data_split: Split,
    evaluation: EvaluationConfig,
    ks: list[int] | None = None,
    part: Literal["test", "valid"] = "test",
) -> EvaluationResult:
    """Evaluate with a run's evaluation settings (its ks unless given, batch size and
    ``exclude_seen``), so that re-evaluating a saved run ranks the same candidates as its
    training did: a repeat-consumption run (Yelp) keeps the user's earlier items rankable."""
    return evaluate(
        model,
        data_split,
        ks=ks or evaluation.ks,
        part=part,
        batch_size=evaluation.batch_size,
        exclude_seen=evaluation.exclude_seen,
    )


def run_record(
    model: Recommender,
    result: EvaluationResult,
    fit_seconds: float,
    memory: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    return {
        "model": model.name,
        "config": model.config.model_dump(mode="json"),
        **result.to_dict(),
        "fit_seconds": round(fit_seconds, 3),
        "peak_memory_mib": memory or {"process": peak_memory_mib()},
        "device": device_description(model.device),
        "machine": platform.platform(),
        "semrec_version": semrec.__version__,
    }


def write_run_results(
    run_dir: Path,
    config: ExperimentConfig,
    dataset: Dataset,
    data_split: Split,
    model: Recommender,
    result: EvaluationResult,
    fit_seconds: float,
    memory: dict[str, dict[str, float]],
) -> None:
    record = {
        **run_record(model, result, fit_seconds, memory),
        "dataset": dataset.summary(),
        "split_fingerprint": split_fingerprint(data_split),
    }
    save_per_user(run_dir / PER_USER_FILE, result)  # before metrics.json marks the run done
    write_text_atomic(run_dir / METRICS_FILE, json.dumps(record, indent=1))
    row = {**result.metrics, "fit s": f"{fit_seconds:.1f}", "eval s": f"{result.seconds:.1f}"}
    columns = [*metric_columns(config.evaluation.ks), "fit s", "eval s"]
    report = render_report(
        f"semrec run {config.name}",
        result.protocol,
        {**dataset.summary(), **{f"split_{k}": v for k, v in data_split.summary().items()}},
        {model.name: row},
        columns,
        sections=run_report_sections(model.name, result, config.evaluation.ks),
    )
    write_text_atomic(run_dir / REPORT_FILE, report)
    write_run_html(run_dir)


def run_report_sections(model_name: str, result: EvaluationResult, ks: list[int]) -> dict[str, str]:
    """report.md sections beyond accuracy: item fairness (original / corrected) and slices."""
    values = {**result.metrics, **result.slices}
    fairness = [
        f"{name}@{k}"
        for name in ("jain", "jain_corrected", "gini", "gini_corrected", "ent_corrected")
        for k in ks
    ]
    slices = [f"{group}:recall@{k}" for group in ("cold", "warm", "head", "tail") for k in ks]
    return {
        "Item fairness (semrec.evaluation.fairness; all measures in metrics.json)": (
            markdown_table({model_name: values}, fairness)
        ),
        "Slices (semrec.evaluation.slices)": markdown_table(
            {model_name: values}, [*slices, *(f"tail_share@{k}" for k in ks)]
        ),
    }


def split_fingerprint(data_split: Split) -> str:
    """Content hashes of the train / valid / test parts: equal only for the same split of
    the same data, which is what a paired comparison of two runs needs."""
    parts = (data_split.train, data_split.valid, data_split.test)
    return "-".join("none" if part is None else part.fingerprint() for part in parts)


def load_run(
    run_dir: Path, location: DataLocation = DataLocation()
) -> tuple[ExperimentConfig, Dataset, Split, Recommender]:
    """Reload a run: its config, data and split (recomputed, then checked), and its model."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    model = load_model(run_dir / MODEL_DIR)
    dataset = prepare_dataset(config.dataset, location)
    data_split = split(dataset, config.split)
    if data_split.train.fingerprint() != model.data_fingerprint:
        raise ModelError(
            f"{run_dir}: the data no longer matches the model (fingerprint "
            f"{data_split.train.fingerprint()} != {model.data_fingerprint}); "
            "the data files changed since training"
        )
    return config, dataset, data_split, model
