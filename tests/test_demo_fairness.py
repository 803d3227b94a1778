"""`semrec demo` shows item fairness and popularity-bias columns (reduced setting)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from semrec.cli import app


def test_demo_has_fairness_and_popularity_bias_columns(tmp_path):
    result = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path), "--max-users", "800", "--mf-epochs", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "Item fairness and popularity bias" in result.output
    for header in ("Jain'@20", "Gini'@20", "Tail@20", "ARP@20"):
        assert header in result.output, header
    report = (tmp_path / "report.md").read_text()
    assert "| model | jain@20 | jain_corrected@20 | gini@20 |" in report
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    pop, ease = metrics["most_pop"], metrics["ease"]
    # MostPop shows every user (nearly) the same list: the least fair by the corrected Gini
    assert pop["metrics"]["gini_corrected@20"] > ease["metrics"]["gini_corrected@20"]
    assert pop["slices"]["tail_share@20"] <= ease["slices"]["tail_share@20"]
