"""A model spec as a walk-forward forecaster: built fresh, trained and calibrated on each fold.

Uses the training code as it is (`run.fit_spec`, `calibrate.predict_heads`) — the same recipe, preset and
overrides as the graph's published model; nothing is written to disk, and jax is imported only when a
fold is actually trained.
"""

from __future__ import annotations

from collections.abc import Callable

from cse_models.evaluation.baselines import Forecaster, Forecasts
from cse_models.evaluation.folds import FoldData
from cse_models.specs import ModelSpec
from cse_models.training.config import TrainingConfig


def trained_forecaster(
    spec: ModelSpec, train_cfg: TrainingConfig, *, on_progress: Callable[[str], None] | None = None
) -> Forecaster:
    """Forecaster that fits `spec` on the fold's train segment, stops early and calibrates on its val
    segment, and forecasts every head of the test windows through the exported function."""
    from cse_models.models import MODELS

    MODELS.get(spec.architecture)  # an unknown name fails now, listing the known ones, not after a fold

    def forecast(data: FoldData) -> Forecasts:
        from cse_models.training.calibrate import predict_heads
        from cse_models.training.run import fit_spec

        def on_epoch(entry) -> None:
            if on_progress is not None:
                on_progress(
                    f"fold {data.fold.index + 1}: {spec.name} epoch {entry.epoch + 1}/{train_cfg.max_epochs} "
                    f"train {entry.train_loss:.5f} val {entry.val_loss:.5f}"
                )

        fitted = fit_spec(spec, data.segments, data.data_cfg, train_cfg, data.scaler, on_epoch=on_epoch)
        return predict_heads(fitted.model, data.test, data.data_cfg, data.scaler, fitted.calibration)

    return forecast
