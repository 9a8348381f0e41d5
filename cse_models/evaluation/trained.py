"""A registered network as a walk-forward forecaster: built fresh and trained on each fold.

Uses the training code as it is (`model_config_for`, `build_model`, `fit`, `predict_windows`); nothing is
written to disk, and jax is imported only when a fold is actually trained.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cse_models.evaluation.baselines import Forecaster
from cse_models.evaluation.folds import FoldData
from cse_models.training.config import TrainingConfig


def trained_forecaster(
    name: str,
    train_cfg: TrainingConfig,
    *,
    preset: str = "demo",
    on_progress: Callable[[str], None] | None = None,
) -> Forecaster:
    """Forecaster that trains model `name` (config preset "demo" or "default") on the fold's train segment,
    stops early on its val segment, and forecasts the test windows: prices, or class probabilities."""
    from cse_models.models import MODELS

    MODELS.get(name)  # an unknown name fails now, listing the known ones, not after the first fold

    def forecast(data: FoldData) -> np.ndarray:
        from flax import nnx

        from cse_models.models import build_model
        from cse_models.training.loop import fit, predict_windows
        from cse_models.training.run import model_config_for

        cfg = data.data_cfg
        model_cfg = model_config_for(name, cfg, data.test.x.shape[1], preset)
        model = build_model(name, model_cfg, rngs=nnx.Rngs(train_cfg.seed))

        def on_epoch(entry) -> None:
            if on_progress is not None:
                on_progress(
                    f"fold {data.fold.index + 1}: {name} epoch {entry.epoch + 1}/{train_cfg.max_epochs} "
                    f"train {entry.train_loss:.5f} val {entry.val_loss:.5f}"
                )

        fit(model, data.segments["train"], data.segments["val"], cfg, train_cfg, on_epoch=on_epoch)
        outputs = np.asarray(predict_windows(model, data.test, cfg), dtype=np.float64)
        if cfg.task == "regression":
            return data.scaler.inverse_column(outputs[:, 0], "close")
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    return forecast
