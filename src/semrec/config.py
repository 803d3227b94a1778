"""Experiment configuration: one YAML file per experiment, validated by pydantic.

Unknown keys are rejected. CLI overrides use dotted paths (``--set training.epochs=3`` style:
``--set model.params.epochs=3``); values are parsed as YAML scalars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from semrec.data.splits import RandomSplit, SplitSpec
from semrec.encoders.text import DEFAULT_MODEL
from semrec.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnMapping(_Section):
    """Which columns of a generic table hold what (CSV/TSV/Parquet/JSONL)."""

    user: str = "user_id"
    item: str = "item_id"
    rating: str | None = None
    timestamp: str | None = None


class DatasetConfig(_Section):
    name: str = Field(description="a registered data set name, or a path to a file or folder")
    format: str | None = Field(None, description="file format when `name` is a path")
    columns: ColumnMapping | None = None
    min_rating: float | None = Field(None, description="keep ratings >= this (-> implicit)")
    k_core: int | None = Field(None, ge=1, description="iterative k-core on users and items")


class EncoderConfig(_Section):
    """Item vectors for the models that read item text (AlphaRec, text-initialised CF...):
    the data set's item texts encoded by a sentence-transformers model (cached on disk), or
    precomputed vectors keyed by item id."""

    model: str | None = Field(
        None,
        description=f"sentence-transformers model name or folder (default {DEFAULT_MODEL}); "
        "with `embeddings`, the model that produced them (needed to encode free text)",
    )
    template: str | None = Field(None, description="item text template; default the data set's")
    batch_size: int = Field(64, ge=1)
    cache_dir: Path | None = Field(None, description="default $SEMREC_CACHE or ~/.cache/semrec")
    embeddings: Path | None = Field(
        None, description="a .npy/.safetensors/.parquet file of vectors keyed by item id"
    )
    ids: Path | None = Field(None, description="item ids file for a .npy `embeddings`")


class ModelSection(_Section):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class EvaluationConfig(_Section):
    ks: list[int] = Field(default_factory=lambda: [10, 20])
    batch_size: int = Field(1024, ge=1)
    exclude_seen: bool = Field(
        True,
        description="rank without the user's training (and, at test, validation) items; "
        "false for repeat-consumption data such as Yelp. Training monitors follow it too",
    )

    @field_validator("ks")
    @classmethod
    def _positive_ks(cls, ks: list[int]) -> list[int]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError("ks must be a non-empty list of positive integers")
        return sorted(set(ks))


class OutputConfig(_Section):
    dir: Path = Path("runs")


class ExperimentConfig(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    dataset: DatasetConfig
    split: SplitSpec = Field(default_factory=RandomSplit)
    encoder: EncoderConfig | None = None
    model: ModelSection
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    parsed = []
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {override!r}: expected key.path=value")
        parsed.append((key.strip(), yaml.safe_load(raw) if raw.strip() else ""))
    return parsed


def build_config(
    raw: dict[str, Any], overrides: list[str] = (), source: str = "config"
) -> ExperimentConfig:
    tree = dict(raw)
    for key, value in parse_overrides(list(overrides)):
        _set_dotted(tree, key, value)
    try:
        return ExperimentConfig.model_validate(tree)
    except ValidationError as error:
        lines = [
            f"  {'.'.join(str(p) for p in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()
        ]
        raise ConfigError(f"{source}: invalid experiment config\n" + "\n".join(lines)) from None


def load_config(path: Path, overrides: list[str] = ()) -> ExperimentConfig:
    """Read a YAML experiment file; errors name the file and the offending field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return build_config(raw, overrides, source=str(path))


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
