"""A model spec as a walk-forward forecaster: built fresh, trained and calibrated on each fold.

Uses the member kind of the spec (`members.member_kind`: a Flax network or a classical tree model) as it
is — the same recipe, preset and overrides as the graph's published model; nothing is written to disk,
and JAX or a tree library is imported only when a fold is actually trained.
"""

from __future__ import annotations

from collections.abc import Callable

from cse_models.members import FittedMember, member_kind
from cse_models.scoring.baselines import Forecaster, Forecasts
from cse_models.scoring.folds import FoldData
from cse_models.specs import ModelSpec
from cse_models.training.config import TrainingConfig


def trained_forecaster(
    spec: ModelSpec,
    train_cfg: TrainingConfig,
    *,
    on_progress: Callable[[str], None] | None = None,
    on_fitted: Callable[[FoldData, FittedMember], None] | None = None,
) -> Forecaster:
    """Forecaster that fits `spec` on the fold's train segment, stops early and calibrates on its val
    segment, and forecasts every head of the test windows through the exported function.

    `on_fitted(fold_data, member)` is called after each fold's fit, before its test forecast (e.g. to
    take the member's validation forecasts for an ensemble without fitting it again)."""
    kind = member_kind(spec.architecture)
    kind.validate(spec)  # an unknown name fails now, listing the known ones, not after a fold

    def forecast(data: FoldData) -> Forecasts:
        def on_epoch(entry) -> None:
            if on_progress is not None:
                on_progress(
                    f"fold {data.fold.index + 1}: {spec.name} epoch {entry.epoch + 1}/{train_cfg.max_epochs} "
                    f"train {entry.train_loss:.5f} val {entry.val_loss:.5f}"
                )

        fitted = kind.fit(spec, data.prepared, train_cfg, on_epoch=on_epoch)
        if on_fitted is not None:
            on_fitted(data, fitted)
        return fitted.forecast(data.test)

    return forecast
