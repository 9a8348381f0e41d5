"""The live scorecard as the service uses it: fed by the predictor, read by the views and Prometheus.

`cse_serving.scorecard` stores and scores; this module knows the served models. It derives each
prediction's Hold band exactly as training labelled (from the manifest's data config and the window's
own trailing volatility), compares live skill with the walk-forward skill the model was published on,
and turns both into the gauges an operator alerts on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

from cse_models.heads.labels import HoldBand
from cse_models.heads.layout import SIGMA_FEATURE
from cse_models.heads.tasks import TASK_SPECS
from cse_models.store.sections import DataFacts
from cse_serving.loaded_model import LoadedModel, Window
from cse_serving.model_registry import ModelRegistry
from cse_serving.schemas import Kline, LiveModelScore, PredictResponse
from cse_serving.scorecard import LiveScore, Scorecard, ScoredPoint, degraded

GAUGES = {
    "skill": ("cse_live_skill", "Live price skill vs persistence, 1 − MAE / MAE(persistence)."),
    "mae": ("cse_live_mae", "Live MAE of the predicted close."),
    "mae_persistence": ("cse_live_persistence_mae", "MAE of persistence on the same candles."),
    "n": ("cse_live_scored", "Predictions scored against their realized candle."),
    "coverage": ("cse_live_interval_coverage", "Share of realized closes inside the served interval."),
    "direction_accuracy": ("cse_live_direction_accuracy", "Share of served directions that came true."),
    "brier": ("cse_live_brier", "Multi-class Brier score of the served direction probabilities."),
}


def walk_forward_skill(model: LoadedModel) -> float:
    """The price skill the version was published on (its price head's, or a seed-task version's metric)."""
    head = model.manifest.head("price")
    if head is not None:
        return head.skill
    return (model.manifest.metrics.walk_forward_skill or {}).get("price", math.nan)


def hold_band(model: LoadedModel, window: Window) -> HoldBand | None:
    """The Hold band training used for this window's label: its task's kind of band (`TaskSpec.hold_band`,
    `HOLD_BANDS`). None when the manifest does not say, or its task has no classes."""
    manifest = model.manifest
    data = manifest.training.data
    if data is None or manifest.task not in TASK_SPECS:
        return None
    spec = TASK_SPECS.get(manifest.task)
    if not spec.class_names or spec.hold_band is None:
        return None
    return HOLD_BANDS[spec.hold_band](model, data, window)


def _band_in_sigmas(model: LoadedModel, data: DataFacts, window: Window) -> HoldBand | None:
    """± `hold_band_sigmas` of the window's own trailing σ·√h (the raw σ feature of its last row)."""
    names = model.manifest.feature_names
    if SIGMA_FEATURE not in names or data.hold_band_sigmas is None:
        return None
    rv_24 = float(window.features[-1, names.index(SIGMA_FEATURE)])
    return HoldBand.in_sigmas(data.hold_band_sigmas, rv_24, model.manifest.horizon)


def _fixed_band(model: LoadedModel, data: DataFacts, window: Window) -> HoldBand | None:
    """± `hold_band` on the simple return."""
    return None if data.hold_band is None else HoldBand.simple_return(data.hold_band)


# `TaskSpec.hold_band` → the band of one window, as training labelled it
HOLD_BANDS: dict[str, Callable[[LoadedModel, DataFacts, Window], HoldBand | None]] = {
    "sigmas": _band_in_sigmas,
    "fixed": _fixed_band,
}


class LiveScorecard:
    """The scorecard with the served models' context."""

    def __init__(self, scorecard: Scorecard, *, margin: float) -> None:
        self.scorecard = scorecard
        self.margin = margin

    def record(self, answer: PredictResponse, model: LoadedModel, window: Window) -> None:
        self.scorecard.record(answer, last_close=window.last_close, hold_band=hold_band(model, window))

    def observe(self, symbol: str, interval: str, klines: Sequence[Kline]) -> int:
        return self.scorecard.observe(symbol, interval, klines)

    def scores(self, model: LoadedModel) -> dict[str, LiveModelScore]:
        """Window (24h, 7d) → the serving version's live scores and whether it has decayed."""
        reference = walk_forward_skill(model)
        return {
            window: _model_score(score, reference, degraded(score, reference, margin=self.margin))
            for window, score in self.scorecard.summary(*model.key, version=model.version).items()
        }

    def recent_points(self, symbol: str, interval: str, *, limit: int) -> list[ScoredPoint]:
        """The series' latest scored predictions of every version, oldest first (the page's chart of
        predicted vs realized closes)."""
        return self.scorecard.recent_points(symbol, interval, limit=limit)

    def gauges(self, registry: ModelRegistry) -> Iterator[tuple[str, str, dict[str, str], float]]:
        """(name, help, labels, value) per serving version and window, for `monitoring.StateCollector`."""
        for (symbol, interval), model in sorted(registry.models().items()):
            for window, score in self.scores(model).items():
                labels = {"symbol": symbol, "interval": interval, "version": model.version, "window": window}
                for field, (name, help_text) in GAUGES.items():
                    value = getattr(score, field)
                    if value is not None:
                        yield name, help_text, labels, float(value)
                yield (
                    "cse_live_degraded",
                    "1 when live skill is below the walk-forward skill by more than the margin.",
                    labels,
                    float(score.degraded),
                )

    def close(self) -> None:
        self.scorecard.close()


def _model_score(score: LiveScore, reference: float, is_degraded: bool) -> LiveModelScore:
    return LiveModelScore(
        n=score.n,
        mae=score.mae,
        mae_persistence=score.mae_persistence,
        skill=score.skill,
        walk_forward_skill=reference if math.isfinite(reference) else None,
        degraded=is_degraded,
        direction_accuracy=score.direction_accuracy,
        brier=score.brier,
        coverage=score.coverage,
        coverage_level=score.coverage_level,
    )
