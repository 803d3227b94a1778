"""Self-contained HTML reports of one run or a comparison of runs (matplotlib, no network).

Every plot is a PNG embedded as a ``data:`` URI and the page has inline CSS only, so the file
opens offline and can be mailed or archived as is. Plots: metric@K curves for K = 1 ..
max K (from the stored per-rank hits), recommendation frequency against training
popularity, per-slice bars (cold / warm users, head / tail items), and training curves
when the run trained iteratively (``training/history.jsonl``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semrec.atomic import write_text_atomic
from semrec.evaluation.metrics import ranking_metrics
from semrec.evaluation.store import PER_USER_FILE, StoredPerUser, load_per_user

HTML_FILE = "report.html"
CURVE_METRICS = ("recall", "ndcg", "precision", "hit_rate")
FAIRNESS_COLUMNS = (
    "jain",
    "jain_corrected",
    "qf",
    "qf_corrected",
    "ent",
    "ent_corrected",
    "fsat",
    "fsat_corrected",
    "gini",
    "gini_corrected",
    "gini_w",
    "gini_w_corrected",
    "vocd",
    "ii_d",
    "ai_d",
)

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f3f3f3}
img{max-width:100%;height:auto;display:block;margin:1em 0}
.note{color:#555;font-size:13px}
code{background:#f3f3f3;padding:1px 4px}
"""


@dataclass(frozen=True)
class RunView:
    """What a report shows of one run: its name, metrics.json record, per-user arrays and
    training history (may be empty)."""

    name: str
    record: dict[str, Any]
    per_user: StoredPerUser | None
    history: list[dict[str, Any]]


def read_run(run_dir: Path) -> RunView:
    run_dir = Path(run_dir)
    record = json.loads((run_dir / "metrics.json").read_text())
    per_user_path = run_dir / PER_USER_FILE
    per_user = load_per_user(per_user_path) if per_user_path.is_file() else None
    history_path = run_dir / "training" / "history.jsonl"
    history = []
    if history_path.is_file():
        history = [json.loads(line) for line in history_path.read_text().splitlines() if line]
    return RunView(run_dir.name, record, per_user, history)


# --- plots ----------------------------------------------------------------------------------
def _figure_png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(png: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def metric_curves(runs: Sequence[RunView]) -> str | None:
    """Mean metric@K for K = 1 .. max K, one panel per metric, one line per run."""
    stored = [(run.name, run.per_user) for run in runs if run.per_user is not None]
    stored = [(name, p) for name, p in stored if p.hits.size and len(p.n_relevant)]
    if not stored:
        return None
    plt = _plt()
    figure, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(4 * len(CURVE_METRICS), 3.2))
    for name, per_user in stored:
        max_k = per_user.hits.shape[1]
        ks = list(range(1, max_k + 1))
        values = ranking_metrics(
            torch.from_numpy(per_user.hits), torch.from_numpy(per_user.n_relevant), ks
        )
        for axis, metric in zip(axes, CURVE_METRICS, strict=True):
            means = [float(values[f"{metric}@{k}"].mean()) for k in ks]
            axis.plot(ks, means, marker=".", label=name)
    for axis, metric in zip(axes, CURVE_METRICS, strict=True):
        axis.set_title(f"{metric}@K")
        axis.set_xlabel("K")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _figure_png(figure)


def popularity_plot(runs: Sequence[RunView]) -> str | None:
    """How often each item is recommended (top max-K lists) against its training popularity."""
    stored = [(run.name, run.per_user) for run in runs if run.per_user is not None]
    stored = [(name, p) for name, p in stored if len(p.item_popularity) and p.top_items.size]
    if not stored:
        return None
    plt = _plt()
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for name, per_user in stored:
        n_items = len(per_user.item_popularity)
        exposure = np.bincount(per_user.top_items.ravel(), minlength=n_items)
        axis.scatter(per_user.item_popularity + 1, exposure + 1, s=6, alpha=0.5, label=name)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("training users of the item + 1")
    axis.set_ylabel(f"times recommended in top-{stored[0][1].top_items.shape[1]} + 1")
    axis.set_title("Recommendation frequency vs item popularity")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, markerscale=3)
    return _figure_png(figure)


def slice_bars(runs: Sequence[RunView]) -> str | None:
    """Recall at the largest K per user slice (cold / warm) and item slice (head / tail)."""
    rows = []
    for run in runs:
        slices = run.record.get("slices") or {}
        ks = run.record.get("protocol", {}).get("ks") or []
        if slices and ks:
            rows.append((run.name, slices, max(ks)))
    if not rows:
        return None
    plt = _plt()
    groups = ("cold", "warm", "head", "tail")
    figure, axis = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / len(rows)
    positions = np.arange(len(groups))
    for index, (name, slices, k) in enumerate(rows):
        heights = [slices.get(f"{group}:recall@{k}", math.nan) for group in groups]
        axis.bar(positions + index * width, heights, width, label=name)
    axis.set_xticks(positions + width * (len(rows) - 1) / 2)
    axis.set_xticklabels([f"{g} users" for g in groups[:2]] + [f"{g} items" for g in groups[2:]])
    axis.set_ylabel(f"recall@{rows[0][2]}")
    axis.set_title("Recall by user activity and item popularity slice")
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    return _figure_png(figure)


def training_curves(runs: Sequence[RunView]) -> str | None:
    """Loss and monitored validation metrics per epoch, for runs that trained iteratively."""
    trained = [run for run in runs if run.history]
    if not trained:
        return None
    plt = _plt()
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    for run in trained:
        epochs = [row.get("epoch") for row in run.history if "loss" in row]
        losses = [row["loss"] for row in run.history if "loss" in row]
        if losses:
            loss_axis.plot(epochs, losses, label=run.name)
        monitored = sorted(
            {key for row in run.history for key in row if key.startswith(("valid_", "test_"))}
        )
        for key in monitored:
            points = [(row["epoch"], row[key]) for row in run.history if key in row]
            if points:
                xs, ys = zip(*points, strict=True)
                metric_axis.plot(xs, ys, marker=".", label=f"{run.name} {key}")
    loss_axis.set_title("training loss")
    metric_axis.set_title("monitored metrics")
    for axis in (loss_axis, metric_axis):
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    return _figure_png(figure)


# --- tables and pages -------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4f}"
    return html.escape(str(value))


def html_table(
    rows: Mapping[str, Mapping[str, Any]],
    columns: Sequence[str],
    marks: Mapping[tuple[str, str], str] | None = None,
    row_label: str = "run",
) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for name, values in rows.items():
        cells = "".join(
            f"<td>{_cell(values.get(c, ''))}{html.escape((marks or {}).get((name, c), ''))}</td>"
            for c in columns
        )
        body.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    table = f"<table><tr><th>{html.escape(row_label)}</th>{head}</tr>" + "".join(body)
    return f'<div style="overflow-x:auto">{table}</table></div>'


def transposed_table(
    rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str], row_label: str = "measure"
) -> str:
    """One row per column name, one column per row of ``rows``: for many measures of a few
    runs."""
    flipped = {
        column: {name: values.get(column, "") for name, values in rows.items()}
        for column in columns
    }
    return html_table(flipped, list(rows), row_label=row_label)


def _page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{body}")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _columns(record: Mapping[str, Any], metrics: Sequence[str]) -> list[str]:
    ks = record.get("protocol", {}).get("ks") or []
    present = record.get("metrics", {})
    return [f"{m}@{k}" for m in metrics for k in ks if f"{m}@{k}" in present]


def plot_sections(runs: Sequence[RunView]) -> list[tuple[str, str]]:
    sections = []
    for heading, plot in (
        ("Metric@K curves", metric_curves),
        ("Recommendation frequency vs item popularity", popularity_plot),
        ("Slices", slice_bars),
        ("Training curves", training_curves),
    ):
        png = plot(runs)
        if png is not None:
            sections.append((heading, _img(png, heading)))
    return sections


def _protocol_list(protocol: Mapping[str, Any]) -> str:
    items = "".join(
        f"<li>{html.escape(str(k))}: "
        + (_protocol_list(v) if isinstance(v, Mapping) else html.escape(str(v)))
        + "</li>"
        for k, v in protocol.items()
    )
    return f"<ul>{items}</ul>"


def run_html(run: RunView) -> str:
    record = run.record
    accuracy = _columns(record, ("recall", "ndcg", "precision", "hit_rate", "mrr", "map"))
    beyond = _columns(record, ("coverage", "novelty", "arp"))
    fairness = [c for m in FAIRNESS_COLUMNS for c in _columns(record, (m,))]
    rows = {record.get("model", run.name): record.get("metrics", {})}
    slices = record.get("slices") or {}
    sections = [
        ("Protocol", _protocol_list(record.get("protocol", {}))),
        ("Accuracy", html_table(rows, accuracy, row_label="model")),
        ("Coverage and popularity", html_table(rows, beyond, row_label="model")),
        (
            "Individual item fairness (original and corrected)",
            transposed_table(rows, fairness)
            + '<p class="note">Definitions, ranges and which direction is fairer: '
            "<code>semrec.evaluation.fairness</code> (Rampisela et al., ACM TORS 2024).</p>",
        ),
    ]
    if slices:
        slice_rows: dict[str, dict[str, Any]] = {}
        for key, value in slices.items():
            group, _, metric = key.rpartition(":")
            slice_rows.setdefault(metric, {})[group or "all"] = value
        groups = [
            g
            for g in ("cold", "warm", "head", "tail", "all")
            if any(g in row for row in slice_rows.values())
        ]
        sections.append(
            (
                "Slices (cold / warm users, head / tail items)",
                html_table(slice_rows, groups, row_label="metric")
                + f'<p class="note">{html.escape(str(record.get("protocol", {}).get("slices")))}'
                "</p>",
            )
        )
    sections += plot_sections([run])
    return _page(f"semrec run {run.name}", sections)


def write_run_html(run_dir: Path) -> Path:
    """Render ``run_dir/report.html`` from the run's files."""
    run_dir = Path(run_dir)
    path = run_dir / HTML_FILE
    write_text_atomic(path, run_html(read_run(run_dir)))
    return path


def comparison_html(
    runs: Sequence[RunView], tables: Sequence[tuple[str, str]], notes: Sequence[str]
) -> str:
    """A comparison page: shared protocol, the given ``(heading, html)`` tables, notes and
    the plots of every run overlaid."""
    protocol = runs[0].record.get("protocol", {})
    sections = [
        ("Protocol (shared)", _protocol_list(protocol)),
        *tables,
        ("Notes", "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"),
    ]
    sections += plot_sections(runs)
    names = ", ".join(run.name for run in runs)
    return _page(f"semrec compare: {names}", sections)
