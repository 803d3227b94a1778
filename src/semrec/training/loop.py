"""The epoch loop shared by learned models: evaluation every N epochs, early stopping,
checkpoints that resume exactly, and a per-epoch history written as it goes.

A checkpoint is ``checkpoint.safetensors`` (module weights, optimizer state, torch RNG) plus
``checkpoint.json`` (epoch, history, numpy RNG state, best score); both are replaced
atomically, so a crash loses at most the epoch in progress.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from semrec.atomic import write_text_atomic
from semrec.errors import ModelError
from semrec.progress import progress
from semrec.training.losses import bpr_loss, sampled_softmax_loss
from semrec.training.samplers import bpr_batches, n_batches

log = logging.getLogger(__name__)

Monitor = Callable[[], dict[str, float]]


@dataclass
class LoopSettings:
    epochs: int
    eval_every: int = 0  # 0: never evaluate during training
    monitor_metric: str = "recall@20"  # a key of the monitor's result, any prefix (valid_...)
    patience: int | None = None  # evaluations without improvement before stopping
    checkpoint_dir: Path | None = None
    history_path: Path | None = None
    learning_rate_schedule: str = "constant"  # or "cosine", see learning_rate_at

    @classmethod
    def for_config(cls, work_dir: Path | None, config: Any) -> LoopSettings:
        """Settings from a model config's ``epochs`` and those of ``eval_every``, ``patience``
        and ``learning_rate_schedule`` it has (the defaults above for the others), keeping the
        checkpoint and history.jsonl in ``work_dir`` (if any)."""
        optional = ("eval_every", "patience", "learning_rate_schedule")
        return cls(
            epochs=config.epochs,
            **{name: getattr(config, name) for name in optional if hasattr(config, name)},
            checkpoint_dir=None if work_dir is None else work_dir / "checkpoint",
            history_path=None if work_dir is None else work_dir / "history.jsonl",
        )


def learning_rate_at(schedule: str, base: float, epoch: int, epochs: int) -> float:
    """The learning rate of 0-based ``epoch``: constant, or cosine from ``base`` towards 0
    over ``epochs`` (set at the start of each epoch, so resuming restores it exactly)."""
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; expected constant or cosine")


@dataclass
class LoopState:
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = float("-inf")
    evaluations_since_best: int = 0


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors = {}
    for param_id, param_state in state["state"].items():
        for key, value in param_state.items():
            tensors[f"optimizer.{param_id}.{key}"] = torch.as_tensor(value).clone()
    return tensors, state["param_groups"]


def _restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], param_groups: list
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, param_id, key = name.split(".", 2)
            state.setdefault(int(param_id), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def save_checkpoint(
    directory: Path,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    state: LoopState,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"module.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    optimizer_tensors, param_groups = _optimizer_tensors(optimizer)
    tensors.update({k: v.cpu().contiguous() for k, v in optimizer_tensors.items()})
    tensors["torch_rng"] = torch.get_rng_state()
    staging = directory / ".checkpoint.safetensors.tmp"
    save_file(tensors, staging)
    os.replace(staging, directory / "checkpoint.safetensors")
    meta = {
        "epoch": state.epoch,
        "history": state.history,
        "best_score": state.best_score,
        "evaluations_since_best": state.evaluations_since_best,
        "numpy_rng": rng.bit_generator.state,
        "param_groups": param_groups,
    }
    write_text_atomic(directory / "checkpoint.json", json.dumps(meta))


def load_checkpoint(
    directory: Path,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> LoopState | None:
    """Restore a checkpoint if ``directory`` holds one; returns its loop state."""
    meta_path, weights_path = directory / "checkpoint.json", directory / "checkpoint.safetensors"
    if not meta_path.is_file() or not weights_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        tensors = load_file(weights_path)
        device = next(module.parameters()).device
        module.load_state_dict(
            {k.removeprefix("module."): v for k, v in tensors.items() if k.startswith("module.")}
        )
        _restore_optimizer(
            optimizer,
            {k: v.to(device) if v.dim() else v for k, v in tensors.items()},
            meta["param_groups"],
        )
        torch.set_rng_state(tensors["torch_rng"])
        rng.bit_generator.state = meta["numpy_rng"]
    except (OSError, KeyError, ValueError, RuntimeError, json.JSONDecodeError) as error:
        raise ModelError(f"{directory}: cannot resume from checkpoint ({error})") from error
    log.info("resumed from %s at epoch %d", directory, meta["epoch"])
    return LoopState(
        epoch=meta["epoch"],
        history=meta["history"],
        best_score=meta["best_score"],
        evaluations_since_best=meta["evaluations_since_best"],
    )


@dataclass(frozen=True)
class Objective:
    """What a ranking epoch minimises: BPR with one negative per positive pair, or sampled
    softmax over ``negatives`` sampled items per pair (or, ``shared``, per batch) with
    temperature ``temperature``; over every positive pair once, or over user-uniform draws
    (``positives``)."""

    loss: str = "bpr"  # or "softmax"
    negatives: int = 1
    temperature: float = 1.0
    shared: bool = False
    positives: str = "pairs"  # or "users": see semrec.training.samplers.bpr_batches

    def __post_init__(self) -> None:
        if self.loss not in ("bpr", "softmax"):
            raise ValueError(f"unknown loss {self.loss!r}; expected bpr or softmax")
        if self.positives not in ("pairs", "users"):
            raise ValueError(f"unknown positives {self.positives!r}; expected pairs or users")
        if self.loss == "bpr" and self.negatives != 1:
            raise ValueError("BPR takes one negative per positive pair")

    def __call__(self, positive_scores: torch.Tensor, negative_scores: torch.Tensor):
        if self.loss == "bpr":
            return bpr_loss(positive_scores, negative_scores)
        return sampled_softmax_loss(positive_scores, negative_scores, self.temperature)


BPR = Objective()


def bpr_epoch(
    forward: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    user_items: sp.csr_matrix,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
    objective: Objective = BPR,
) -> float:
    """One epoch over all positive pairs with uniform negatives; the mean loss.

    ``forward(users, positives, negatives)`` returns positive scores [B], negative scores
    ([B] for BPR, [B, N] for the softmax, whose negatives are [B, N], or [1, N] when shared)
    and the sum of the model's other loss terms, already weighted (L2, contrastive...).
    """
    total = torch.zeros((), device=device)
    for users, positives, negatives in bpr_batches(
        user_items, batch_size, rng, objective.negatives, objective.shared, objective.positives
    ):
        batch = [torch.from_numpy(a).to(device) for a in (users, positives, negatives)]
        positive_scores, negative_scores, other_terms = forward(*batch)
        loss = objective(positive_scores, negative_scores) + other_terms
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach()
    return total.item() / n_batches(user_items, batch_size)


def run_epochs(
    settings: LoopSettings,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    train_epoch: Callable[[], float],
    monitor: Monitor | None = None,
    description: str = "Training",
) -> LoopState:
    """Run ``train_epoch`` (returns the mean loss) until ``settings.epochs`` or early stop."""
    state = LoopState()
    best_weights: dict[str, torch.Tensor] | None = None
    if settings.checkpoint_dir is not None:
        state = load_checkpoint(settings.checkpoint_dir, module, optimizer, rng) or state
    if settings.history_path is not None:
        settings.history_path.parent.mkdir(parents=True, exist_ok=True)
        if state.epoch == 0:  # a fresh run: drop the history of an earlier one
            settings.history_path.write_text("")
    base_rates = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
    for group, base in zip(optimizer.param_groups, base_rates, strict=True):
        group["initial_lr"] = base
    with progress(description, total=settings.epochs) as advance:
        advance(state.epoch)
        while state.epoch < settings.epochs:
            for group, base in zip(optimizer.param_groups, base_rates, strict=True):
                group["lr"] = learning_rate_at(
                    settings.learning_rate_schedule, base, state.epoch, settings.epochs
                )
            started = time.perf_counter()
            module.train()
            loss = train_epoch()
            state.epoch += 1
            record: dict[str, Any] = {
                "epoch": state.epoch,
                "loss": loss,
                "train_seconds": round(time.perf_counter() - started, 3),
            }
            if settings.learning_rate_schedule != "constant":
                record["learning_rate"] = optimizer.param_groups[0]["lr"]
            stop = False
            if (
                monitor is not None
                and settings.eval_every
                and state.epoch % settings.eval_every == 0
            ):
                module.eval()
                evaluated = time.perf_counter()
                metrics = monitor()
                record.update(metrics)
                record["eval_seconds"] = round(time.perf_counter() - evaluated, 3)
                score = next(v for k, v in metrics.items() if k.endswith(settings.monitor_metric))
                if score > state.best_score:
                    state.best_score, state.evaluations_since_best = score, 0
                    if settings.patience is not None:
                        best_weights = {k: v.clone() for k, v in module.state_dict().items()}
                else:
                    state.evaluations_since_best += 1
                    stop = settings.patience is not None and (
                        state.evaluations_since_best >= settings.patience
                    )
            state.history.append(record)
            log.info("%s", record)
            if settings.history_path is not None:
                with open(settings.history_path, "a") as stream:
                    stream.write(json.dumps(record) + "\n")
            if settings.checkpoint_dir is not None:
                save_checkpoint(settings.checkpoint_dir, module, optimizer, rng, state)
            advance(loss=loss)
            if stop:
                log.info("early stop at epoch %d", state.epoch)
                break
    if best_weights is not None:  # early stopping keeps the best evaluated weights
        module.load_state_dict(best_weights)
    module.eval()
    return state
