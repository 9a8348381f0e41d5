"""What the scorecard answers: a scored prediction beside its realized close, and the scores of a window.

msgspec Structs, so the routes return them as they are (the page's table and chart read these fields)."""

from __future__ import annotations

import msgspec


class ScoredPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One served prediction beside the close that came true: `close`, `lower` and `upper` are null where
    the version withheld that head; `last_close` is what persistence predicted."""

    version: str
    target_ms: int
    last_close: float
    close: float | None
    lower: float | None
    upper: float | None
    realized_close: float


class LiveScore(msgspec.Struct, frozen=True, kw_only=True):
    """Scores of the predictions whose target candle falls in a window; each head over the predictions that
    served it (a withheld head's scores are null, and so is a skill whose reference error is 0).

    `skill` = 1 − `mae` / `mae_persistence` on the same candles, comparable with the walk-forward price skill.
    `brier` is the multi-class Brier score Σ_k (p_k − 1[y = k])²; `coverage` the share of realized closes in
    [lower, upper], to read against its nominal `coverage_level`."""

    n: int
    n_price: int
    mae: float | None
    mae_persistence: float | None
    skill: float | None
    n_direction: int
    direction_accuracy: float | None
    brier: float | None
    n_interval: int
    coverage: float | None
    coverage_level: float | None
