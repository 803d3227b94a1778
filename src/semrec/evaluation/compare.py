"""Compare runs of the same split: one table with significance marks, and the same as HTML.

Runs are comparable only when they were evaluated on the same split of the same data: the
same ``split_fingerprint`` (content hashes of train / valid / test, in ``metrics.json``), the
same evaluated users in the same order, and the same evaluation protocol (part, exclusions,
ranking). Otherwise :func:`load_comparable_runs` refuses with a message naming the
difference: a paired test over different users would pair unrelated numbers.

Per-user metrics (``recall@K``, ``ndcg@K``, ...) are tested with
:func:`semrec.evaluation.significance.compare_per_user` (every run against the first,
Holm-adjusted); list-level measures (coverage, fairness, tail share) have one value per run
and are shown without tests.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semrec.atomic import write_text_atomic
from semrec.errors import SemrecError
from semrec.evaluation.html import (
    FAIRNESS_COLUMNS,
    RunView,
    comparison_html,
    html_table,
    read_run,
    transposed_table,
)
from semrec.evaluation.significance import PairedTest, compare_per_user, significance_mark

TESTED_METRICS = ("recall", "ndcg", "hit_rate", "precision", "mrr", "map")
LIST_COLUMNS = ("coverage", "jain_corrected", "ent_corrected", "gini_corrected", "tail_share")
PROTOCOL_KEYS = ("part", "ranking", "excluded", "protocol")


class ComparisonError(SemrecError):
    """Runs that cannot be compared (different splits, missing per-user values)."""


@dataclass(frozen=True)
class Comparison:
    runs: list[RunView]
    rows: dict[str, dict[str, Any]]
    columns: list[str]
    terminal_columns: list[str]  # the largest K only, to fit a terminal
    marks: dict[tuple[str, str], str]
    tests: list[PairedTest]
    alpha: float


def _label(run: RunView, seen: set[str]) -> str:
    label = run.name
    model = run.record.get("model")
    if model and model not in label:
        label = f"{label} ({model})"
    while label in seen:
        label += "'"
    seen.add(label)
    return label


def load_comparable_runs(run_dirs: Sequence[Path]) -> list[RunView]:
    """Read the runs and check that they share one split and one set of evaluated users."""
    if len(run_dirs) < 2:
        raise ComparisonError("give at least two run directories to compare")
    runs = []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        if not (run_dir / "metrics.json").is_file():
            raise ComparisonError(f"{run_dir}: not a run directory (no metrics.json)")
        run = read_run(run_dir)
        if run.per_user is None:
            raise ComparisonError(
                f"{run_dir}: has no per_user.safetensors (written by semrec since the "
                "significance tests); re-run `semrec train` to compare it"
            )
        runs.append(run)
    first = runs[0]
    for run in runs[1:]:
        _check_same_split(first, run)
    return runs


def _check_same_split(first: RunView, other: RunView) -> None:
    a, b = first.record, other.record
    fingerprints = a.get("split_fingerprint"), b.get("split_fingerprint")
    if None in fingerprints:
        raise ComparisonError(
            f"{first.name} / {other.name}: a run has no split fingerprint in metrics.json; "
            "re-run it with this semrec version to compare"
        )
    if fingerprints[0] != fingerprints[1]:
        left = {**a.get("dataset", {}), **a.get("protocol", {})}
        right = {**b.get("dataset", {}), **b.get("protocol", {})}
        differing = [
            f"{key} {left.get(key)!r} vs {right.get(key)!r}"
            for key in sorted(set(left) | set(right))
            if left.get(key) != right.get(key) and not isinstance(left.get(key), dict)
        ]
        raise ComparisonError(
            f"{first.name} and {other.name} were evaluated on different splits (split "
            f"fingerprints {fingerprints[0]} vs {fingerprints[1]}"
            + (f"; {', '.join(differing[:4])}" if differing else "")
            + "): paired tests need the same users and test items; compare runs of one split"
        )
    for key in PROTOCOL_KEYS:
        left, right = a.get("protocol", {}).get(key), b.get("protocol", {}).get(key)
        if left != right:
            raise ComparisonError(
                f"{first.name} and {other.name} differ in the evaluation protocol: "
                f"{key} = {left!r} vs {right!r}"
            )
    if not np.array_equal(first.per_user.user_index, other.per_user.user_index):
        raise ComparisonError(
            f"{first.name} and {other.name} evaluated different users "
            f"({len(first.per_user.user_index)} vs {len(other.per_user.user_index)})"
        )


def compare(runs: Sequence[RunView], alpha: float = 0.05) -> Comparison:
    """Paired tests on every per-user metric present in all runs; the table's rows."""
    labels: list[str] = []
    seen: set[str] = set()
    for run in runs:
        labels.append(_label(run, seen))
    shared = set.intersection(*(set(run.per_user.metrics) for run in runs))
    ks = sorted(set.intersection(*(set(run.record["protocol"].get("ks", [])) for run in runs)))
    tested = [f"{m}@{k}" for m in TESTED_METRICS for k in ks if f"{m}@{k}" in shared]
    tests = compare_per_user(
        {label: run.per_user.metrics for label, run in zip(labels, runs, strict=True)}, tested
    )
    table_tested = [c for c in tested if c.split("@")[0] in ("recall", "ndcg")]
    list_columns = [f"{m}@{k}" for m in LIST_COLUMNS for k in ks]
    rows: dict[str, dict[str, Any]] = {}
    for label, run in zip(labels, runs, strict=True):
        values = {**run.record.get("metrics", {}), **(run.record.get("slices") or {})}
        rows[label] = {c: values.get(c, math.nan) for c in [*table_tested, *list_columns]}
    marks = {(t.run, t.metric): significance_mark(t, alpha) for t in tests}
    max_k = f"@{max(ks)}" if ks else ""
    columns = [*table_tested, *list_columns]
    short = [c for c in columns if c.endswith(max_k) and not c.startswith("ent_")]
    return Comparison(list(runs), rows, columns, short, marks, tests, alpha)


def notes(comparison: Comparison) -> list[str]:
    n_runs = len(comparison.runs)
    correction = (
        f"Holm-adjusted over the {n_runs - 1} comparisons per metric"
        if n_runs > 2
        else "one comparison per metric, no adjustment needed"
    )
    baseline = next(iter(comparison.rows))
    return [
        f"Marks on run rows compare that run with the first ({baseline}), paired over "
        f"{comparison.tests[0].n_users if comparison.tests else 0} users: "
        f"* both the paired t-test and the Wilcoxon signed-rank test reject at "
        f"alpha = {comparison.alpha} ({correction}); † only one of them does.",
        "d = Cohen's d for paired samples (mean difference / SD of differences).",
        "coverage, fairness (corrected forms: jain, ent higher fairer; gini lower fairer) and "
        "tail_share are one value per run, not tested.",
    ]


def tests_table_html(tests: Sequence[PairedTest]) -> str:
    header = (
        "<tr><th>metric</th><th>run</th><th>mean diff</th><th>t p (Holm)</th>"
        "<th>Wilcoxon p (Holm)</th><th>Cohen's d</th></tr>"
    )
    rows = [
        f"<tr><td>{html.escape(t.metric)}</td><td>{html.escape(t.run)}</td>"
        f"<td>{t.mean_difference:+.4f}</td><td>{t.t_pvalue_holm:.3g}</td>"
        f"<td>{t.wilcoxon_pvalue_holm:.3g}</td><td>{t.cohens_d:+.3f}</td></tr>"
        for t in tests
    ]
    return "<table>" + header + "".join(rows) + "</table>"


def write_comparison_html(comparison: Comparison, path: Path) -> Path:
    tested = [c for c in comparison.columns if c.split("@")[0] in TESTED_METRICS]
    ks = sorted({int(c.split("@")[1]) for c in comparison.columns if "@" in c})
    list_level = [
        f"{m}@{k}" for m in ("coverage", *FAIRNESS_COLUMNS, "tail_share", "arp") for k in ks
    ]
    list_rows = {
        label: {**run.record.get("metrics", {}), **(run.record.get("slices") or {})}
        for label, run in zip(comparison.rows, comparison.runs, strict=True)
    }
    tables = [
        (
            "Ranking accuracy (marks: paired tests against the first run)",
            html_table(comparison.rows, tested, comparison.marks),
        ),
        (
            "Coverage, individual item fairness (original and corrected) and popularity bias",
            transposed_table(list_rows, list_level),
        ),
        ("Paired tests against the first run", tests_table_html(comparison.tests)),
    ]
    page = comparison_html(comparison.runs, tables, notes(comparison))
    write_text_atomic(Path(path), page)
    return Path(path)
