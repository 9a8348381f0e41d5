"""What the web-page tests share: the serving tests' model builders and fixtures (tests/serving/serving_helpers.py,
loaded by path under their own module name so that both folders can run in one session) and a manifest as
publication writes it, with stored leaderboards."""

from __future__ import annotations

from pathlib import Path

from serving_helpers_by_path import serving_helpers as load_serving_helpers

ROOT = Path(__file__).resolve().parents[2]


serving_helpers = load_serving_helpers()


def board_row(name: str, kind: str, metric: str, value: float, reference_value: float, p: float | None) -> dict:
    """One row of a stored leaderboard as `Leaderboard.as_dict()` writes it (the fields the page reads)."""
    return {
        "name": name,
        "kind": kind,
        "metrics": {metric: value},
        "skill": 1.0 - value / reference_value,
        "dm": {"p_value_model_better": 1.0 if p is None else p},
    }


STORED_BOARDS = {
    "price": {
        "reference": "persistence",
        "info": {"first_target": "2024-01-08 00:00", "last_target": "2024-12-30 23:00"},
        "rows": [
            board_row("ensemble_weighted", "ensemble", "mae", 95.0, 100.0, 0.01),
            board_row("cnn", "model", "mae", 96.0, 100.0, 0.02),
            board_row("lstm", "model", "mae", 97.0, 100.0, 0.04),
            board_row("persistence", "baseline", "mae", 100.0, 100.0, None),
            board_row("drift", "baseline", "mae", 100.4, 100.0, 0.7),
            board_row("moving_average", "baseline", "mae", 131.0, 100.0, 1.0),
        ],
    },
    "direction": {
        "reference": "class_frequencies",
        "rows": [
            board_row("class_frequencies", "baseline", "brier", 0.66, 0.66, None),
            board_row("ensemble_weighted", "ensemble", "brier", 0.65, 0.66, 0.2),
            board_row("cnn", "model", "brier", 0.655, 0.66, 0.3),
            board_row("majority", "baseline", "brier", 0.9, 0.66, 1.0),
        ],
    },
}


def published_manifest(symbol: str, version: str, *, heads: dict[str, bool], boards: bool = True):
    """A forecast manifest as publication writes it: the published ensemble ("ensemble_weighted") with its
    walk-forward metrics, members with weights, the ensemble record (per-head weights) and — with `boards` —
    the stored leaderboards of the price and direction heads (baselines included); the interval and volatility
    heads keep only their verdict."""
    import dataclasses

    from cse_models.scoring.baselines import REFERENCE
    from cse_models.store import Member

    manifest = serving_helpers.forecast_manifest(symbol, version, heads=heads)
    metrics = {
        **manifest.metrics.to_dict(),
        "selected": "ensemble_weighted",
        "walk_forward": {"price": {"mae": 95.0}, "interval": {"winkler": 300.0, "coverage": 0.81}},
        "walk_forward_skill": {"price": 0.05},
        "data_range": {"start": "2024-01-01T00:00:00Z", "end": "2024-12-31T23:00:00Z"},
        **({"leaderboards": STORED_BOARDS} if boards else {}),
    }
    return dataclasses.replace(
        manifest,
        heads=[dataclasses.replace(h, reference=REFERENCE[h.name]) for h in manifest.heads],
        metrics=metrics,
        members=[Member("cnn", "cnn", 0.7), Member("lstm", "lstm", 0.3)],
        ensemble={
            "name": "ensemble_weighted",
            "method": "weighted",
            "members": ["cnn", "lstm"],
            "weights": {"price": {"cnn": 0.7, "lstm": 0.3}, "direction": {"cnn": 0.55, "lstm": 0.45}},
            "reason": "its walk-forward price skill beats its best member's",
        },
    )


def fill_scorecard(path: Path, symbol: str, version: str, *, base: float, n: int = 24) -> int:
    """`n` hourly predictions of `symbol` 1h by `version`, served over the last hours and all scored, as the
    live scorecard would hold them: realized closes a deterministic walk around `base`, each predicted from
    the previous close (closer to the truth than persistence) with a ±1 % interval → how many were scored."""
    import math
    import time
    from datetime import UTC, datetime

    from cse_serving.schemas import ForecastCard, ForecastInterval, Kline, Prediction, PredictResponse
    from cse_serving.scorecard import Scorecard

    hour_ms = 3_600_000
    now_ms = int(time.time() * 1000) // hour_ms * hour_ms
    clock_ms = [now_ms]
    card = Scorecard(path, clock=lambda: clock_ms[0] / 1000)
    realized = [base * math.exp(0.004 * math.sin(i / 2.5) + 0.001 * i) for i in range(n + 1)]
    klines = []
    for i in range(1, n + 1):
        target = now_ms - (n + 1 - i) * hour_ms
        last = realized[i - 1]
        close = last + 0.6 * (realized[i] - last) + 0.0004 * last * math.cos(i)  # a model with some skill
        forecast = ForecastCard(
            last_close=last,
            close=close,
            log_return=math.log(close / last),
            interval=ForecastInterval(lower=close * 0.99, upper=close * 1.01, level=0.8),
            volatility=None,
            direction=None,
            skill={"price": 0.05},
        )
        clock_ms[0] = target - hour_ms // 2
        as_of = datetime.fromtimestamp(target / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        card.record(
            PredictResponse(
                symbol=symbol,
                interval="1h",
                model_version=version,
                as_of=as_of,
                prediction=Prediction(close=close),
                forecast=forecast,
            )
        )
        price = realized[i]
        klines.append(
            Kline(open=last, high=price * 1.002, low=price * 0.998, close=price, volume=1.0, open_time=target)
        )
    clock_ms[0] = now_ms
    scored = card.observe(symbol, "1h", klines)
    card.close()
    return scored
