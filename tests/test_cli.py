"""End-to-end tests of the `semrec` command line on the bundled data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from semrec.cli import app

runner = CliRunner()
CONFIGS = Path(__file__).parents[1] / "configs"


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_demo_end_to_end_on_a_reduced_setting(tmp_path):
    result = invoke("demo", "--out", tmp_path, "--max-users", 800, "--mf-epochs", 2)
    assert result.exit_code == 0, result.output
    for model in ("most_pop", "item_knn", "ease", "mf_bpr"):
        assert model in result.output
    report = (tmp_path / "report.md").read_text()
    assert "| ease |" in report and "protocol: random" in report and "Top-5 for user" in report
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 < metrics["ease"]["metrics"]["recall@20"] <= 1
    assert metrics["ease"]["metrics"]["recall@20"] > metrics["most_pop"]["metrics"]["recall@20"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    result = invoke(
        "train",
        "-c",
        CONFIGS / "xwines-ease.yaml",
        "--set",
        f"output.dir={out}",
        "--set",
        "model.params.regularization=100",
    )
    assert result.exit_code == 0, result.output
    return out / "xwines-ease"


def test_train_writes_a_complete_run_directory(run_dir):
    for name in (
        "config.yaml",
        "metrics.json",
        "report.md",
        "train.log",
        "model/manifest.json",
        "model/weights.safetensors",
    ):
        assert (run_dir / name).is_file(), name
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["config"]["regularization"] == 100.0  # the --set override was applied
    assert record["protocol"]["protocol"] == "random"
    assert record["protocol"]["ranking"] == "full"


def test_evaluate_reproduces_the_training_metrics(run_dir):
    result = invoke("evaluate", run_dir, "--k", 20)
    assert result.exit_code == 0, result.output
    recall = json.loads((run_dir / "metrics.json").read_text())["metrics"]["recall@20"]
    assert f"{recall:.4f}" in result.output


def test_evaluate_keeps_a_repeat_consumption_runs_seen_items_rankable(tmp_path):
    result = invoke(
        "train",
        "-c",
        CONFIGS / "xwines-ease.yaml",
        "--set",
        f"output.dir={tmp_path}",
        "--set",
        "evaluation.exclude_seen=false",
    )
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "xwines-ease"
    recall = json.loads((run_dir / "metrics.json").read_text())["metrics"]["recall@20"]
    result = invoke("evaluate", run_dir, "--k", 20)
    assert result.exit_code == 0, result.output
    assert f"{recall:.4f}" in result.output  # not the history-excluded figure


def test_recommend_for_a_known_user_and_for_a_history(run_dir):
    result = invoke("recommend", run_dir, "--user", "1000024", "--k", 5)
    assert result.exit_code == 0, result.output
    assert "—" in result.output  # titles are "name — winery"
    result = invoke("recommend", run_dir, "--history", "111415,100001", "--k", 3)
    assert result.exit_code == 0, result.output
    assert "top-3 for history" in result.output


def test_recommend_for_an_unknown_user_is_a_clear_error(run_dir):
    result = invoke("recommend", run_dir, "--user", "no-such-user")
    assert result.exit_code == 2
    assert "no-such-user" in result.output
    assert "Traceback" not in result.output


def test_data_info_shows_statistics():
    result = invoke("data", "info", "xwines")
    assert result.exit_code == 0, result.output
    assert "10,561" in result.output and "150,000" in result.output


def test_bad_config_names_the_field(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "name: x\ndataset: {name: xwines}\nmodel: {name: ease}\nsplit: {protocol: sideways}\n"
    )
    result = invoke("train", "-c", config)
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "split" in result.output

    config.write_text(
        "name: x\ndataset: {name: xwines}\nmodel: {name: ease, params: {lambda: 3}}\n"
    )
    result = invoke("train", "-c", config, "--set", f"output.dir={tmp_path}")
    assert result.exit_code == 2
    assert "lambda" in result.output


def test_malformed_data_file_names_file_and_line(tmp_path):
    table = tmp_path / "events.csv"
    table.write_text("user_id,item_id\n1,2\n3,4,5\n")
    result = invoke("data", "info", table)
    assert result.exit_code == 2
    assert "events.csv" in result.output and "line 3" in result.output
    assert "Traceback" not in result.output


class CountingEncoder:
    """Stands in for MiniLM (tested in tests/encoders): here only the command is under test."""

    identity = "counting-encoder"
    load_seconds = None
    texts_encoded = 0

    def __init__(self, model: str) -> None:
        self.model = model

    def encode(self, texts: list[str]):
        CountingEncoder.texts_encoded += len(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_encode_writes_the_cache_then_reads_it(tmp_path, monkeypatch):
    monkeypatch.setattr("semrec.encoders.SentenceEncoder", CountingEncoder)
    monkeypatch.setattr(CountingEncoder, "texts_encoded", 0)
    result = invoke("encode", "xwines", "--cache-dir", tmp_path, "--limit", 50)
    assert result.exit_code == 0, result.output
    assert "50 items -> 2-dim vectors" in result.output
    assert "cache miss" in result.output and "items/s" in result.output
    assert CountingEncoder.texts_encoded == 50
    assert len(list((tmp_path / "embeddings").glob("counting-encoder-*.safetensors"))) == 1

    result = invoke("encode", "xwines", "--cache-dir", tmp_path, "--limit", 50)
    assert result.exit_code == 0, result.output
    assert "cache hit" in result.output and CountingEncoder.texts_encoded == 50

    monkeypatch.setenv("SEMREC_CACHE", str(tmp_path / "from-env"))
    result = invoke("encode", "xwines", "--limit", 50, "--template", "{WineName}")
    assert result.exit_code == 0, result.output
    assert "cache miss" in result.output
    assert list((tmp_path / "from-env" / "embeddings").glob("*.safetensors"))


def test_encode_with_a_bad_template_or_model_folder_is_a_clear_error(tmp_path):
    result = invoke("encode", "xwines", "--cache-dir", tmp_path, "--template", "{Colour}")
    assert result.exit_code == 2
    assert "Colour" in result.output and "Traceback" not in result.output
    result = invoke("encode", "xwines", "--cache-dir", tmp_path, "--model", "./no-such-model")
    assert result.exit_code == 2
    assert "no-such-model" in result.output and "does not exist" in result.output


XWINES_VECTORS = Path(__file__).parent / "fixtures" / "embeddings" / "xwines-minilm.safetensors"


def test_alpharec_trains_on_text_vectors_and_answers_a_text_intention(tmp_path, run_dir):
    config = tmp_path / "alpharec.yaml"
    config.write_text(
        f"""
name: xwines-alpharec
dataset: {{name: xwines, min_rating: 4.0, k_core: 5}}
split: {{protocol: random, test_ratio: 0.2, seed: 2024}}
encoder:
  embeddings: {XWINES_VECTORS}
  model: sentence-transformers/all-MiniLM-L6-v2
model:
  name: alpharec
  params: {{epochs: 2, mlp_hidden_size: 64, batch_size: 2048, negatives: 32, eval_every: 0}}
evaluation: {{ks: [20]}}
output: {{dir: {tmp_path}}}
"""
    )
    result = invoke("train", "-c", config)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "xwines-alpharec" / "metrics.json").read_text())
    assert 0 < metrics["metrics"]["recall@20"] <= 1

    intention = "a bold red wine to drink with steak"
    result = invoke("recommend", tmp_path / "xwines-alpharec", "--intention", intention, "--k", 5)
    assert result.exit_code == 0, result.output
    assert "top-5 for intention" in result.output
    user = json.loads((run_dir / "model" / "manifest.json").read_text())["user_ids"][0]
    result = invoke(
        "recommend", tmp_path / "xwines-alpharec", "--user", user, "--intention", intention
    )
    assert result.exit_code == 0, result.output
    assert f"top-10 for {user} + intention" in result.output

    result = invoke("recommend", run_dir, "--intention", intention)  # an EASE run
    assert result.exit_code == 2
    assert "ease does not read text" in result.output


def test_python_dash_m_semrec_is_the_same_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "semrec", "data", "list"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "xwines" in result.stdout and "registered data sets" in result.stdout
