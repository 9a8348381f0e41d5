"""Scoring served predictions once their candle has closed: which closes count as truth, the realized
class, and the scores of a set of scored rows. Pure functions of numbers; the store feeds them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cse_models.heads.labels import HoldBand
from cse_models.scoring.metrics import brier_losses
from cse_serving.schemas import Kline
from cse_serving.scorecard.results import LiveScore


def final_closes(klines: Sequence[Kline], step_ms: int, now_ms: int) -> dict[int, float]:
    """open_time → close of the klines closed by `now_ms` whose close can be a truth (finite, positive):
    observe may run before a request's klines are validated, and a bad one must not poison the scores."""
    return {
        k.opened_ms: k.close
        for k in klines
        if k.opened_ms is not None and k.opened_ms + step_ms <= now_ms and math.isfinite(k.close) and k.close > 0
    }


def realized_class(close: float, last_close: float, band: float | None, sigma: float | None) -> int | None:
    """The Sell / Hold / Buy label of the move from `last_close` to `close` under the Hold band recorded with
    the prediction (`heads.labels`, as training labels); None when none was recorded."""
    return None if band is None else HoldBand(band, sigma).label(last_close, close)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def live_score(table: np.ndarray) -> LiveScore:
    """Scores of scored rows `[n, 11]` in `statements.SCORED`'s column order (nulls as NaN)."""
    _, last, close, lower, upper, level, p_sell, p_hold, p_buy, realized, label = table.T
    price = ~np.isnan(close)
    mae = _mean(np.abs(close[price] - realized[price]))
    mae_persistence = _mean(np.abs(last[price] - realized[price]))
    skill = 1.0 - mae / mae_persistence if mae is not None and mae_persistence else None
    direction = ~np.isnan(p_sell) & ~np.isnan(label)
    probabilities = np.stack([p_sell, p_hold, p_buy], axis=1)[direction]
    labels = label[direction].astype(np.int64)
    interval = ~np.isnan(lower)
    inside = (lower[interval] <= realized[interval]) & (realized[interval] <= upper[interval])
    return LiveScore(
        n=len(table),
        n_price=int(price.sum()),
        mae=mae,
        mae_persistence=mae_persistence,
        skill=skill,
        n_direction=int(direction.sum()),
        direction_accuracy=_mean(probabilities.argmax(axis=1) == labels),
        brier=_mean(brier_losses(probabilities, labels)),
        n_interval=int(interval.sum()),
        coverage=_mean(inside.astype(np.float64)),
        coverage_level=_mean(level[interval]),
    )
