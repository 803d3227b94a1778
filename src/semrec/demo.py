"""``semrec demo``: the four baselines on the bundled X-Wines data, offline, in about a minute.

Protocol: X-Wines Slim ratings >= 4 stars as positives ("liked"), 5-core, random 80/20 split
per user (seed 2024), full ranking over all wines with each user's training wines excluded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semrec.atomic import write_text_atomic
from semrec.config import DatasetConfig
from semrec.data import Dataset
from semrec.data.splits import RandomSplit, Split, split
from semrec.evaluation import evaluate
from semrec.evaluation.report import markdown_table, metric_columns, render_report
from semrec.experiment import fit_timed, prepare_dataset, run_record
from semrec.models import Query, Recommender, model_class

DEMO_DATASET = DatasetConfig(name="xwines", min_rating=4.0, k_core=5)
DEMO_SPLIT = RandomSplit(test_ratio=0.2, seed=2024)
DEMO_KS = (10, 20)
#: individual item fairness (original and corrected, semrec.evaluation.fairness) and
#: popularity bias (share of long-tail slots, average recommended popularity) at K = 20
DEMO_FAIRNESS_COLUMNS = [
    f"{name}@{max(DEMO_KS)}"
    for name in ("jain", "jain_corrected", "gini", "gini_corrected", "tail_share", "arp")
]
DEMO_MODELS: dict[str, dict[str, Any]] = {
    "most_pop": {},
    "item_knn": {"n_neighbors": 100, "shrinkage": 10.0},
    "ease": {"regularization": 250.0},
    # MF-BPR: L2 0.1 chosen by a 4-point sweep on this split (1e-3 .. 1e-1); see docs/models.md
    "mf_bpr": {"epochs": 40, "learning_rate": 5e-3, "batch_size": 2048, "weight_decay": 0.1},
}
FAIRNESS_NOTE = (
    "jain / gini: Jain's index (higher fairer) and Gini index (lower fairer) of item "
    "exposure in the top-20 lists, original and as corrected by Rampisela et al. (ACM TORS "
    "2024) to span [0, 1] between the unfairest and fairest realisable recommendations; "
    "tail_share: share of slots given to items outside the 20 % most popular; arp: average "
    "training popularity of recommended items."
)
CITATION = (
    "X-Wines: R. X. de Azambuja, A. J. Morais, V. Filipe, 'X-Wines: A Wine Dataset for "
    "Recommender Systems and Machine Learning', Big Data and Cognitive Computing 7(1):20, "
    "2023 (CC0 1.0)."
)


@dataclass(frozen=True)
class SampleUser:
    user_id: str
    history: list[str]
    recommendations: dict[str, list[str]]


@dataclass(frozen=True)
class DemoResult:
    rows: dict[str, dict[str, Any]]
    columns: list[str]
    samples: list[SampleUser]
    report_path: Path
    fairness_columns: list[str] = field(default_factory=lambda: list(DEMO_FAIRNESS_COLUMNS))


def _keep_users(dataset: Dataset, max_users: int) -> Dataset:
    """The first ``max_users`` users (reduced demo for tests)."""
    return dataset.select(dataset.interactions.user_index < max_users)


def _sample_users(
    dataset: Dataset, data_split: Split, models: dict[str, Recommender], n_users: int = 2
) -> list[SampleUser]:
    catalog = dataset.catalog
    train = data_split.train
    counts = train.user_counts()
    # two users with a short, readable history: the first ones with 5 training wines
    chosen = np.flatnonzero(counts == 5)[:n_users]
    if len(chosen) < n_users:
        chosen = np.argsort(counts)[-n_users:]
    sequences = train.sequences()
    samples = []
    for user in chosen:
        recommendations = {}
        for name, model in models.items():
            top = model.recommend(Query.users([user]), k=5).item_index[0].cpu().numpy()
            recommendations[name] = catalog.titles(top)
        samples.append(
            SampleUser(
                user_id=str(train.user_ids[user]),
                history=catalog.titles(sequences[user]),
                recommendations=recommendations,
            )
        )
    return samples


def _sample_markdown(sample: SampleUser) -> str:
    lines = [f"History (training): {'; '.join(sample.history)}", ""]
    lines += [f"- {name}: {'; '.join(titles)}" for name, titles in sample.recommendations.items()]
    return "\n".join(lines)


def run_demo(
    output_dir: Path, mf_epochs: int | None = None, max_users: int | None = None
) -> DemoResult:
    dataset = prepare_dataset(DEMO_DATASET)
    if max_users is not None:
        dataset = _keep_users(dataset, max_users)
    data_split = split(dataset, DEMO_SPLIT)
    rows: dict[str, dict[str, Any]] = {}
    records: dict[str, Any] = {}
    models: dict[str, Recommender] = {}
    for name, params in DEMO_MODELS.items():
        if name == "mf_bpr" and mf_epochs is not None:
            params = {**params, "epochs": mf_epochs}
        model = model_class(name)(**params)
        fit_seconds = fit_timed(model, dataset, data_split)
        result = evaluate(model, data_split, ks=DEMO_KS)
        models[name] = model
        records[name] = run_record(model, result, fit_seconds)
        rows[name] = {
            **result.metrics,
            **result.slices,
            "time s": f"{fit_seconds + result.seconds:.1f}",
        }
        protocol = result.protocol
    columns = [*metric_columns(DEMO_KS), "time s"]
    fairness_table = markdown_table(rows, DEMO_FAIRNESS_COLUMNS)
    samples = _sample_users(dataset, data_split, models)
    notes = [CITATION, "time s = training + full-ranking evaluation, on this machine."]
    sections = {
        "Item fairness and popularity bias": fairness_table + "\n\n" + FAIRNESS_NOTE,
        **{f"Top-5 for user {s.user_id}": _sample_markdown(s) for s in samples},
    }
    report = render_report(
        "semrec demo: baselines on X-Wines",
        protocol,
        {**dataset.summary(), **{f"split_{k}": v for k, v in data_split.summary().items()}},
        rows,
        columns,
        notes,
        sections,
    )
    output_dir = Path(output_dir)
    write_text_atomic(output_dir / "report.md", report)
    write_text_atomic(output_dir / "metrics.json", json.dumps(records, indent=1))
    return DemoResult(rows, columns, samples, output_dir / "report.md")
