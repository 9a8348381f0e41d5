"""When a served model has decayed: its live price skill against the walk-forward skill it was published on."""

from __future__ import annotations

import math

from cse_serving.scorecard.results import LiveScore

MIN_SCORED = 100
"""Scored predictions below which `degraded` never flags: over fewer candles one news candle moves the MAE
more than any sensible margin."""


def degraded(score: LiveScore, walk_forward_skill: float, *, margin: float, min_n: int = MIN_SCORED) -> bool:
    """Has the live price skill fallen more than `margin` below the model's walk-forward skill?

    False while fewer than `min_n` price predictions are scored, or when either skill is undefined: a flag
    should mean decay, not the noise of a few candles."""
    if score.skill is None or score.n_price < min_n or not math.isfinite(walk_forward_skill):
        return False
    return score.skill < walk_forward_skill - margin
