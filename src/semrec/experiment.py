"""Run an experiment config end to end: data -> split -> fit -> evaluate -> ``runs/<name>/``.

A run directory holds ``config.yaml`` (resolved), ``metrics.json``, ``model/`` (the saved
model), ``report.md`` and ``train.log``. Each file is written atomically.
"""

from __future__ import annotations

import json
import logging
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semrec
from semrec.atomic import write_text_atomic
from semrec.config import DatasetConfig, ExperimentConfig, dump_config, load_config
from semrec.data import Dataset
from semrec.data.registry import load_dataset
from semrec.data.splits import Split, filter_min_rating, k_core, split
from semrec.errors import ModelError
from semrec.evaluation import EvaluationResult, evaluate
from semrec.evaluation.report import metric_columns, render_report
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


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


MONITOR_KS = (20,)


def fit_timed(
    model: Recommender, dataset: Dataset, data_split: Split, work_dir: Path | None = None
) -> float:
    """Fit and return seconds. Iterative models are monitored on the validation part, or,
    where the split has none (paper protocols such as LightGCN's), on the test part: that
    curve is recorded for learning curves only, never used to pick an epoch."""
    part = "valid" if data_split.valid is not None else "test"

    def monitor() -> dict[str, float]:
        metrics = evaluate(model, data_split, ks=MONITOR_KS, part=part).metrics
        return {
            f"{part}_{name}": value
            for name, value in metrics.items()
            if name.split("@")[0] in ("recall", "ndcg")
        }

    started = time.perf_counter()
    model.fit(TrainData(data_split.train, dataset.catalog, data_split.valid, monitor, work_dir))
    return time.perf_counter() - started


def run_experiment(config: ExperimentConfig, location: DataLocation = DataLocation()) -> Path:
    """Train and evaluate one model; returns the run directory."""
    run_dir = Path(config.output.dir) / config.name
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
        fit_seconds = fit_timed(model, dataset, data_split, run_dir / "training")
        result = evaluate(
            model,
            data_split,
            ks=config.evaluation.ks,
            batch_size=config.evaluation.batch_size,
            exclude_seen=config.evaluation.exclude_seen,
        )
        log.info("metrics %s", result.metrics)
        model.save(run_dir / MODEL_DIR)
        write_run_results(run_dir, config, dataset, data_split, model, result, fit_seconds)
    finally:
        logging.getLogger("semrec").removeHandler(handler)
        handler.close()
    return run_dir


def run_record(model: Recommender, result: EvaluationResult, fit_seconds: float) -> dict[str, Any]:
    return {
        "model": model.name,
        "config": model.config.model_dump(mode="json"),
        **result.to_dict(),
        "fit_seconds": round(fit_seconds, 3),
        "peak_memory_mib": round(peak_memory_mib(), 1),
        "device": str(model.device),
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
) -> None:
    record = {**run_record(model, result, fit_seconds), "dataset": dataset.summary()}
    write_text_atomic(run_dir / METRICS_FILE, json.dumps(record, indent=1))
    row = {**result.metrics, "fit s": f"{fit_seconds:.1f}", "eval s": f"{result.seconds:.1f}"}
    columns = [*metric_columns(config.evaluation.ks), "fit s", "eval s"]
    report = render_report(
        f"semrec run {config.name}",
        result.protocol,
        {**dataset.summary(), **{f"split_{k}": v for k, v in data_split.summary().items()}},
        {model.name: row},
        columns,
    )
    write_text_atomic(run_dir / REPORT_FILE, report)


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
