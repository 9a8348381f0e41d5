"""Train one registered model on prepared datasets and leave a self-describing model directory.

This is what the `model_<name>` asset and the CLI call: build → fit with best checkpoints →
price-space validation metrics beside the persistence baseline → `model.json` + `checkpoints/`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from cse_models.config import DataConfig
from cse_models.errors import ConfigError
from cse_models.features.dataset import SplitArrays
from cse_models.features.scaling import FittedScaler
from cse_models.features.windows import CLASS_NAMES, target_rows
from cse_models.models import MODELS, build_model, parameter_count
from cse_models.training.checkpoint import BestCheckpoints, save_model_spec
from cse_models.training.config import TrainingConfig
from cse_models.training.loop import EpochLog, fit, predict_windows
from cse_models.training.metrics import classification_metrics, regression_metrics

SUMMARY_FILE = "summary.json"
CHECKPOINTS_DIR = "checkpoints"
TRAIN_STATE_DIR = "train_state"
TENSORBOARD_DIR = "tensorboard"


@dataclass(frozen=True)
class TrainedModel:
    """What a training run leaves behind, as JSON-friendly data (the asset's output)."""

    directory: str
    name: str
    config: dict[str, Any]
    parameters: int
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    metrics: dict[str, dict[str, Any]]
    seconds: float
    devices: int

    def save(self) -> None:
        (Path(self.directory) / SUMMARY_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> TrainedModel:
        return cls(**json.loads((Path(directory) / SUMMARY_FILE).read_text()))


def model_config_for(name: str, data_cfg: DataConfig, n_features: int, preset: str = "default", **overrides: Any):
    """The registered config (its defaults, or its small `demo()` preset) with the input width, window
    length and head size the data dictates, plus explicit overrides."""
    entry = MODELS.get(name)
    n_outputs = len(CLASS_NAMES) if data_cfg.task == "classification" else 1
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    unknown = set(overrides) - fields
    if unknown:
        raise ConfigError(f"model {name!r} has no config field(s) {sorted(unknown)}; fields: {sorted(fields)}")
    from_data = {"n_features": n_features, "n_outputs": n_outputs, "seq_len": data_cfg.seq_len}
    values = {**{k: v for k, v in from_data.items() if k in fields}, **overrides}
    if preset == "demo":
        return entry.config_cls.demo(**values)
    if preset != "default":
        raise ConfigError(f"model preset must be 'default' or 'demo', got {preset!r}")
    return entry.config_cls(**values)


def persistence_prices(split: SplitArrays, data_cfg: DataConfig) -> np.ndarray:
    """Naive forecast: the next close equals the last close of the window."""
    rows = target_rows(len(split.close), data_cfg.seq_len, data_cfg.horizon)
    return split.close[rows - data_cfg.horizon]


def validation_metrics(
    model: nnx.Module, split: SplitArrays, data_cfg: DataConfig, scaler: FittedScaler, train_labels: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Validation metrics beside the naive baseline of the task: persistence for prices, the train
    segment's majority class for Buy/Sell/Hold."""
    outputs = predict_windows(model, split, data_cfg)
    if data_cfg.task == "classification":
        probabilities = np.asarray(jax.nn.softmax(outputs, axis=-1))
        model_m = classification_metrics(probabilities, split.y, CLASS_NAMES)
        majority = np.bincount(train_labels, minlength=len(CLASS_NAMES)).argmax()
        naive_m = classification_metrics(
            np.eye(len(CLASS_NAMES))[np.full(len(split.y), majority)], split.y, CLASS_NAMES
        )
        return {
            "validation": model_m,
            "naive_baseline": naive_m,
            "skill": {"accuracy_gain": model_m["accuracy"] - naive_m["accuracy"]},
        }
    rows = target_rows(len(split.close), data_cfg.seq_len, data_cfg.horizon)
    actual = split.close[rows]
    model_m = regression_metrics(scaler.inverse_column(outputs[:, 0], "close"), actual)
    naive_m = regression_metrics(persistence_prices(split, data_cfg), actual)
    return {
        "validation": model_m,
        "naive_baseline": naive_m,
        "skill": {"mae_skill": 1.0 - model_m["mae"] / naive_m["mae"]},
    }


def train_model(
    name: str,
    datasets: dict[str, SplitArrays],
    data_cfg: DataConfig,
    train_cfg: TrainingConfig,
    scaler: FittedScaler,
    directory: str | Path,
    preset: str = "default",
    *,
    resume: bool = False,
    devices: int | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
    **model_overrides: Any,
) -> TrainedModel:
    """Build, fit and describe one model in `directory`.

    `resume=True` continues a crashed run from `directory/train_state` (same config and data); otherwise
    the best checkpoints and training state of an earlier run in `directory` are cleared first.
    `devices`: data-parallel over the first N devices (default all).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not resume:
        for stale in (CHECKPOINTS_DIR, TRAIN_STATE_DIR, TENSORBOARD_DIR):
            shutil.rmtree(directory / stale, ignore_errors=True)
    cfg = model_config_for(name, data_cfg, datasets["train"].x.shape[1], preset, **model_overrides)
    model = build_model(name, cfg, rngs=nnx.Rngs(train_cfg.seed))
    checkpoints = BestCheckpoints(directory / CHECKPOINTS_DIR, keep=train_cfg.keep_best)
    started = time.perf_counter()
    try:
        result = fit(
            model,
            datasets["train"],
            datasets["val"],
            data_cfg,
            train_cfg,
            checkpoints=checkpoints,
            state_dir=directory / TRAIN_STATE_DIR,
            devices=devices,
            log_dir=directory / TENSORBOARD_DIR if train_cfg.tensorboard else None,
            on_epoch=on_epoch,
        )
    finally:
        checkpoints.close()
    seconds = time.perf_counter() - started
    save_model_spec(directory, name, cfg)
    metrics = validation_metrics(model, datasets["val"], data_cfg, scaler, datasets["train"].y)
    trained = TrainedModel(
        directory=str(directory),
        name=name,
        config=dataclasses.asdict(cfg),
        parameters=parameter_count(model),
        history=[dataclasses.asdict(e) for e in result.history],
        best_epoch=result.best_epoch,
        stopped_early=result.stopped_early,
        metrics=metrics,
        seconds=seconds,
        devices=devices or jax.device_count(),
    )
    trained.save()
    return trained


__all__ = ["EpochLog", "TrainedModel", "model_config_for", "train_model", "validation_metrics"]
