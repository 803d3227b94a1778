"""Markdown reports: one table of models x metrics, with the protocol next to the numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TABLE_METRICS = ("recall", "ndcg", "coverage")


def metric_columns(ks: Sequence[int], metrics: Sequence[str] = TABLE_METRICS) -> list[str]:
    return [f"{metric}@{k}" for metric in metrics for k in ks]


def markdown_table(
    rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str], row_label: str = "model"
) -> str:
    """``rows[model][column]`` -> a Markdown table (floats with 4 decimals)."""
    header = f"| {row_label} | " + " | ".join(columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    lines = [header, rule]
    for model, values in rows.items():
        cells = []
        for column in columns:
            value = values.get(column, "")
            cells.append(f"{value:.4f}" if isinstance(value, float) else str(value))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_report(
    title: str,
    protocol: Mapping[str, Any],
    dataset_summary: Mapping[str, Any],
    rows: Mapping[str, Mapping[str, Any]],
    columns: Sequence[str],
    notes: Sequence[str] = (),
    sections: Mapping[str, str] | None = None,
) -> str:
    protocol_lines = "\n".join(f"- {key}: {value}" for key, value in protocol.items())
    data_lines = "\n".join(
        f"- {key}: {value:.6f}" if isinstance(value, float) else f"- {key}: {value}"
        for key, value in dataset_summary.items()
    )
    parts = [
        f"# {title}",
        "## Protocol",
        protocol_lines,
        "## Data",
        data_lines,
        "## Results",
        markdown_table(rows, columns),
    ]
    for heading, body in (sections or {}).items():
        parts += [f"## {heading}", body]
    if notes:
        parts += ["## Notes", "\n".join(f"- {note}" for note in notes)]
    return "\n\n".join(parts) + "\n"
