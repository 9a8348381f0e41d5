"""How each head is scored: its metrics, the per-point loss the Diebold–Mariano test compares, and the
metric behind skill (1 − metric / metric of the head's reference). Rules are registered by name (`RULES`);
a head names its rule in `HeadSpec.scoring`, and `SCORING` maps each registered head to it.

  price       MAE (skill), RMSE, MAPE, directional accuracy, IC = corr(predicted, realized log return),
              and the accuracy of "always up" on the same points, to read directional accuracy against
  interval    Winkler interval score (skill; Winkler 1972: width + 2/α × the miss), coverage, width
  volatility  MAE of the next-horizon log(high/low) (skill), RMSE, IC
  direction   Brier (skill), accuracy, macro-F1, log loss
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from cse_models.heads.registry import HeadView
from cse_models.registry import Registry
from cse_models.scoring.dm_test import DM_LOSSES
from cse_models.scoring.metrics import brier_losses, classification_scores, regression_scores

Scores = Callable[[np.ndarray, np.ndarray, np.ndarray, float], dict[str, float]]
PointLosses = Callable[[np.ndarray, np.ndarray, str, float], np.ndarray]


@dataclass(frozen=True)
class HeadScoring:
    scores: Scores  # (forecast, truth, last close, interval level) → metrics
    point_losses: PointLosses  # (forecast, truth, DM loss name, interval level) → [n]
    skill_metric: str
    dm_loss: Callable[[str], str]  # the loss name the DM test records, from the requested one
    columns: tuple[tuple[str, str], ...]  # (metric key, Markdown header)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (persistence predicts no move at all)."""
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _price(forecast: np.ndarray, actual: np.ndarray, last: np.ndarray, _: float) -> dict[str, float]:
    return {
        **regression_scores(forecast, actual, last),
        "ic": correlation(np.log(forecast / last), np.log(actual / last)),
        "always_up_accuracy": float(np.mean(actual > last)),
    }


def winkler_losses(bounds: np.ndarray, actual: np.ndarray, level: float) -> np.ndarray:
    """Per-point interval score (u − l) + 2/α·(l − y)⁺ + 2/α·(y − u)⁺ with α = 1 − level `[n]`."""
    lower, upper = bounds[:, 0], bounds[:, 1]
    penalty = 2.0 / (1.0 - level)
    return (upper - lower) + penalty * np.maximum(lower - actual, 0) + penalty * np.maximum(actual - upper, 0)


def _interval(bounds: np.ndarray, actual: np.ndarray, last: np.ndarray, level: float) -> dict[str, float]:
    return {
        "coverage": float(np.mean((bounds[:, 0] <= actual) & (actual <= bounds[:, 1]))),
        "width_pct": float(np.mean((bounds[:, 1] - bounds[:, 0]) / last) * 100.0),
        "winkler": float(winkler_losses(bounds, actual, level).mean()),
        "nominal": level,
    }


def _volatility(forecast: np.ndarray, actual: np.ndarray, _: np.ndarray, __: float) -> dict[str, float]:
    err = forecast - actual
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "ic": correlation(forecast, actual),
    }


def _direction(probabilities: np.ndarray, labels: np.ndarray, _: np.ndarray, __: float) -> dict[str, float]:
    return classification_scores(probabilities, labels.astype(np.int64))


RULES: Registry[HeadScoring] = Registry("scoring rule")
RULES.add(
    "close_mae",
    HeadScoring(
        scores=_price,
        point_losses=lambda f, y, loss, _: DM_LOSSES.get(loss)(f - y),
        skill_metric="mae",
        dm_loss=lambda loss: loss,
        columns=(("mae", "MAE"), ("rmse", "RMSE"), ("directional_accuracy", "dir. acc."), ("ic", "IC")),
    ),
)
RULES.add(
    "winkler",
    HeadScoring(
        scores=_interval,
        point_losses=lambda f, y, _, level: winkler_losses(f, y, level),
        skill_metric="winkler",
        dm_loss=lambda _: "winkler",
        columns=(("coverage", "coverage"), ("width_pct", "width %"), ("winkler", "Winkler")),
    ),
)
RULES.add(
    "range_mae",
    HeadScoring(
        scores=_volatility,
        point_losses=lambda f, y, loss, _: DM_LOSSES.get(loss)(f - y),
        skill_metric="mae",
        dm_loss=lambda loss: loss,
        columns=(("mae", "MAE"), ("rmse", "RMSE"), ("ic", "IC")),
    ),
)
RULES.add(
    "brier",
    HeadScoring(
        scores=_direction,
        point_losses=lambda f, y, _, __: brier_losses(f, y.astype(np.int64)),
        skill_metric="brier",
        dm_loss=lambda _: "brier",
        columns=(("accuracy", "accuracy"), ("f1_macro", "macro-F1"), ("log_loss", "log loss"), ("brier", "Brier")),
    ),
)


SCORING: Mapping[str, HeadScoring] = HeadView(lambda spec: RULES.get(spec.scoring))
