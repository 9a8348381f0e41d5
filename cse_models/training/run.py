"""Train one registered model on prepared datasets and leave a self-describing model directory.

This is what the `model_<name>` asset and the CLI call: build → fit with best checkpoints → calibrate the
heads → validation metrics per head beside each head's reference baseline → `summary.json` + `checkpoints/`.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from cse_models.config import DataConfig
from cse_models.datasets.prepared import PreparedSeries
from cse_models.heads.calibration import HeadCalibration
from cse_models.heads.layout import network_outputs
from cse_models.heads.tasks import task_spec
from cse_models.models import MODELS, build_model, parameter_count
from cse_models.scoring.segment import score_segment
from cse_models.specs import ModelSpec, preset_config
from cse_models.training.calibrate import calibrate_heads, predict_heads
from cse_models.training.checkpoint import BestCheckpoints, save_model_spec
from cse_models.training.config import TrainingConfig
from cse_models.training.history import EpochLog, FitResult
from cse_models.training.loop import fit
from cse_models.training.summary import TrainedModel

CHECKPOINTS_DIR = "checkpoints"
TRAIN_STATE_DIR = "train_state"
TENSORBOARD_DIR = "tensorboard"


def model_config_for(name: str, data_cfg: DataConfig, n_features: int, preset: str = "default", **overrides: Any):
    """The registered config (its defaults, or its small `demo()` preset) with the input width, window
    length and head size the data dictates, plus explicit overrides."""
    entry = MODELS.get(name)
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    from_data = {"n_features": n_features, "n_outputs": network_outputs(data_cfg.task), "seq_len": data_cfg.seq_len}
    values = {**{k: v for k, v in from_data.items() if k in fields}, **overrides}
    return preset_config(name, entry.config_cls, preset, values)


@dataclass(frozen=True)
class FittedModel:
    """A model fit on a train segment, early-stopped and (forecast task) calibrated on its val segment."""

    model: nnx.Module
    config: Any
    result: FitResult
    calibration: HeadCalibration | None


def fit_spec(spec: ModelSpec, data: PreparedSeries, train_cfg: TrainingConfig, **fit_options: Any) -> FittedModel:
    """Build the spec's model, fit it, calibrate its heads: one recipe for publication and every fold."""
    data_cfg = data.config
    cfg = model_config_for(spec.architecture, data_cfg, data.train.x.shape[1], spec.preset, **spec.overrides)
    model = build_model(spec.architecture, cfg, rngs=nnx.Rngs(train_cfg.seed))
    result = fit(model, data.train, data.val, data_cfg, train_cfg, **fit_options)
    calibration = calibrate_heads(model, data) if task_spec(data_cfg.task).calibrated else None
    return FittedModel(model, cfg, result, calibration)


def validation_metrics(fitted: FittedModel, data: PreparedSeries) -> dict[str, dict[str, Any]]:
    """Per head: validation scores of the model and of the head's reference baseline, and the skill — the
    same baselines and scoring as the walk-forward leaderboard."""
    forecasts = predict_heads(fitted.model, data.val, data.config, data.scaler, fitted.calibration)
    return score_segment(forecasts, data.train, data.val, data.config, data.scaler)


def train_model(
    spec: ModelSpec,
    data: PreparedSeries,
    train_cfg: TrainingConfig,
    directory: str | Path,
    *,
    resume: bool = False,
    devices: int | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> TrainedModel:
    """Build, fit, calibrate and describe one model spec in `directory`.

    `resume=True` continues a crashed run from `directory/train_state` (same config and data); otherwise
    the best checkpoints and training state of an earlier run in `directory` are cleared first.
    `devices`: data-parallel over the first N devices (default all).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not resume:
        for stale in (CHECKPOINTS_DIR, TRAIN_STATE_DIR, TENSORBOARD_DIR):
            shutil.rmtree(directory / stale, ignore_errors=True)
    checkpoints = BestCheckpoints(directory / CHECKPOINTS_DIR, keep=train_cfg.keep_best)
    started = time.perf_counter()
    try:
        fitted = fit_spec(
            spec,
            data,
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
    save_model_spec(directory, spec.architecture, fitted.config)
    trained = TrainedModel(
        directory=str(directory),
        name=spec.architecture,
        config=dataclasses.asdict(fitted.config),
        parameters=parameter_count(fitted.model),
        history=[dataclasses.asdict(e) for e in fitted.result.history],
        best_epoch=fitted.result.best_epoch,
        stopped_early=fitted.result.stopped_early,
        metrics=validation_metrics(fitted, data),
        seconds=seconds,
        devices=devices or jax.device_count(),
        calibration=None if fitted.calibration is None else dataclasses.asdict(fitted.calibration),
    )
    trained.save()
    return trained


__all__ = ["EpochLog", "FittedModel", "TrainedModel", "fit_spec", "model_config_for", "train_model"]
