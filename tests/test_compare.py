"""Run reports and `semrec compare` on real runs of the bundled X-Wines data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semrec.cli import app
from semrec.evaluation.store import load_per_user

runner = CliRunner()
CONFIGS = Path(__file__).parents[1] / "configs"


def train(out: Path, name: str, *overrides: str) -> Path:
    args = ["train", "-c", str(CONFIGS / "xwines-ease.yaml"), "--set", f"output.dir={out}"]
    args += ["--set", f"name={name}"]
    for override in overrides:
        args += ["--set", override]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("compare-runs")
    return {
        "ease": train(out, "ease"),
        "pop": train(out, "pop", "model.name=most_pop", "model.params={}"),
        "other_split": train(out, "ease-seed1", "split.seed=1"),
    }


def _external_urls(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page) + re.findall(
        r"url\(\s*['\"]?(?:https?:)?//", page
    )


def test_a_run_writes_per_user_values_and_a_self_contained_html_report(runs):
    run_dir = runs["ease"]
    record = json.loads((run_dir / "metrics.json").read_text())
    stored = load_per_user(run_dir / "per_user.safetensors")
    assert len(stored.user_index) == record["n_users"]
    assert stored.metrics["recall@20"].mean() == pytest.approx(record["metrics"]["recall@20"])
    assert stored.top_items.shape == (record["n_users"], 20)
    for key in ("jain_corrected@10", "gini_w@20", "ii_d@10"):
        assert key in record["metrics"]
    assert "tail:recall@20" in record["slices"] and "cold:ndcg@10" in record["slices"]
    assert record["split_fingerprint"]
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3  # curves, popularity, slices
    assert _external_urls(page) == []
    assert "jain_corrected@10" in page
    report = (run_dir / "report.md").read_text()
    assert "## Item fairness" in report and "tail:recall@20" in report


def test_compare_prints_one_table_and_writes_html(runs, tmp_path):
    out = tmp_path / "cmp.html"
    result = runner.invoke(app, ["compare", str(runs["pop"]), str(runs["ease"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "pop" in result.output and "ease" in result.output
    # EASE beats MostPop by a wide margin on X-Wines: both tests reject
    assert re.search(r"0\.\d{4}\*", result.output)
    page = out.read_text()
    assert page.count("data:image/png;base64,") >= 3
    assert _external_urls(page) == []
    assert "Wilcoxon" in page and "Cohen" in page


def test_compare_refuses_runs_of_different_splits(runs, tmp_path):
    result = runner.invoke(
        app,
        ["compare", str(runs["ease"]), str(runs["other_split"]), "--out", str(tmp_path / "x")],
    )
    assert result.exit_code == 2
    assert "different splits" in result.output
    assert not (tmp_path / "x").exists()


def test_compare_needs_two_runs(runs):
    result = runner.invoke(app, ["compare", str(runs["ease"])])
    assert result.exit_code == 2
    assert "at least two" in result.output
