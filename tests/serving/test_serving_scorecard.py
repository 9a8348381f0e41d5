"""The live scorecard on real SQLite files, fed real PredictResponse structs, checked against hand-computed
numbers.

The constructed case: four hourly predictions of BTCUSDT 1h from version v1, each from a last close of 100
with a Hold band of ±0.01 in log return:

    target  predicted  realized  |err|  |persistence err|  interval    covered  p(sell, hold, buy)  class
    T+1h    101        100.5     0.5    0.5                [99, 102]   yes      0.2 0.5 0.3         hold
    T+2h    102        103       1.0    3.0                [99, 104]   yes      0.1 0.3 0.6         buy
    T+3h    99         97        2.0    3.0                [98, 102]   no       0.3 0.4 0.3         sell
    T+4h    100.5      100       0.5    0.0                [99, 101]   yes      0.6 0.3 0.1         hold

MAE 4/4 = 1, persistence MAE 6.5/4 = 1.625, skill 1 − 1/1.625 = 5/13; coverage 3/4; argmax hold, buy,
hold, sell → 2 of 4 right; Brier (0.38 + 0.26 + 0.74 + 0.86) / 4 = 0.56.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cse_models.errors import DataError
from cse_models.heads.labels import HoldBand
from cse_serving.schemas import (
    ForecastCard,
    ForecastDirection,
    ForecastInterval,
    Kline,
    Prediction,
    PredictResponse,
)
from cse_serving.scorecard import LiveScore, Scorecard, degraded

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
T0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
BAND = HoldBand(0.01, sigma=1.0)  # ±0.01 in log return
CASE = [  # (target, predicted close, realized close, (lower, upper), (p_sell, p_hold, p_buy))
    (T0 + 1 * HOUR_MS, 101.0, 100.5, (99.0, 102.0), (0.2, 0.5, 0.3)),
    (T0 + 2 * HOUR_MS, 102.0, 103.0, (99.0, 104.0), (0.1, 0.3, 0.6)),
    (T0 + 3 * HOUR_MS, 99.0, 97.0, (98.0, 102.0), (0.3, 0.4, 0.3)),
    (T0 + 4 * HOUR_MS, 100.5, 100.0, (99.0, 101.0), (0.6, 0.3, 0.1)),
]


class Clock:
    """A settable clock in unix seconds."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def forecast_answer(
    target_ms: int,
    close: float | None,
    bounds: tuple[float, float] | None = None,
    probabilities: tuple[float, float, float] | None = None,
    *,
    symbol: str = "BTCUSDT",
    interval: str = "1h",
    version: str = "v1",
    last_close: float = 100.0,
) -> PredictResponse:
    """A forecast answer as the service serves it: heads not given are withheld (null)."""
    direction = None
    if probabilities is not None:
        named = dict(zip(("sell", "hold", "buy"), probabilities, strict=True))
        best = max(named, key=named.__getitem__)
        direction = ForecastDirection(label=best, confidence=named[best], probabilities=named)
    card = ForecastCard(
        last_close=last_close,
        close=close,
        log_return=math.log(close / last_close) if close is not None else None,
        interval=ForecastInterval(lower=bounds[0], upper=bounds[1], level=0.8) if bounds else None,
        volatility=None,
        direction=direction,
        skill={"price": 0.05},
    )
    prediction = Prediction(
        close=close,
        label=direction.label if direction else None,
        confidence=direction.confidence if direction else None,
        probabilities=direction.probabilities if direction else None,
    )
    return PredictResponse(
        symbol=symbol,
        interval=interval,
        model_version=version,
        as_of=iso(target_ms),
        prediction=prediction,
        forecast=card,
    )


def kline(open_ms: int, close: float) -> Kline:
    return Kline(open=close, high=close * 1.001, low=close * 0.999, close=close, volume=1.0, open_time=open_ms)


def record_case(scorecard: Scorecard, clock: Clock) -> None:
    """Each prediction is recorded half an hour before its candle opens, as a live client would get it."""
    for target, close, _, bounds, probabilities in CASE:
        clock.ms = target - HOUR_MS // 2
        assert scorecard.record(forecast_answer(target, close, bounds, probabilities), hold_band=BAND)


def realized_klines() -> list[Kline]:
    return [kline(target, realized) for target, _, realized, _, _ in CASE]


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def scorecard(tmp_path: Path, clock: Clock) -> Iterator[Scorecard]:
    card = Scorecard(tmp_path / "scorecard.db", clock=clock)
    yield card
    card.close()


def scored_case(scorecard: Scorecard, clock: Clock) -> LiveScore:
    record_case(scorecard, clock)
    clock.ms = T0 + 6 * HOUR_MS
    assert scorecard.observe("BTCUSDT", "1h", realized_klines()) == 4
    return scorecard.summary("BTCUSDT", "1h")["24h"]


def test_mae_persistence_and_skill_are_exact_on_four_predictions(scorecard: Scorecard, clock: Clock) -> None:
    score = scored_case(scorecard, clock)

    assert (score.n, score.n_price) == (4, 4)
    assert score.mae == pytest.approx(1.0)
    assert score.mae_persistence == pytest.approx(1.625)
    assert score.skill == pytest.approx(5 / 13)


def test_interval_coverage_is_three_of_four_at_its_nominal_level(scorecard: Scorecard, clock: Clock) -> None:
    score = scored_case(scorecard, clock)

    assert score.n_interval == 4
    assert score.coverage == pytest.approx(0.75)
    assert score.coverage_level == pytest.approx(0.8)


def test_direction_accuracy_and_brier_are_exact(scorecard: Scorecard, clock: Clock) -> None:
    score = scored_case(scorecard, clock)

    assert score.n_direction == 4
    assert score.direction_accuracy == pytest.approx(0.5)
    assert score.brier == pytest.approx(0.56)


def test_withheld_heads_leave_their_scores_null(scorecard: Scorecard, clock: Clock) -> None:
    target = T0 + HOUR_MS
    scorecard.record(forecast_answer(target, 101.0), hold_band=BAND)
    clock.ms = target + HOUR_MS

    scorecard.observe("BTCUSDT", "1h", [kline(target, 100.5)])
    score = scorecard.summary("BTCUSDT", "1h")["24h"]

    assert (score.n, score.n_price, score.n_direction, score.n_interval) == (1, 1, 0, 0)
    assert score.mae == pytest.approx(0.5)
    assert (score.direction_accuracy, score.brier, score.coverage, score.coverage_level) == (None, None, None, None)


def test_skill_is_null_when_persistence_is_perfect(scorecard: Scorecard, clock: Clock) -> None:
    target = T0 + HOUR_MS
    scorecard.record(forecast_answer(target, 101.0))
    clock.ms = target + HOUR_MS

    scorecard.observe("BTCUSDT", "1h", [kline(target, 100.0)])
    score = scorecard.summary("BTCUSDT", "1h")["24h"]

    assert (score.mae, score.mae_persistence, score.skill) == (pytest.approx(1.0), 0.0, None)


def test_a_legacy_answer_is_scored_with_the_last_close_given(scorecard: Scorecard, clock: Clock) -> None:
    target = T0 + HOUR_MS
    legacy = PredictResponse(
        symbol="BTCUSDT", interval="1h", model_version="v1", as_of=iso(target), prediction=Prediction(close=102.0)
    )

    with pytest.raises(DataError, match="last_close"):
        scorecard.record(legacy)
    scorecard.record(legacy, last_close=100.0)
    clock.ms = target + HOUR_MS
    scorecard.observe("BTCUSDT", "1h", [kline(target, 101.0)])

    score = scorecard.summary("BTCUSDT", "1h")["24h"]
    assert (score.mae, score.mae_persistence, score.skill) == (pytest.approx(1.0), pytest.approx(1.0), 0.0)


def test_the_same_candle_recorded_twice_counts_once_with_the_first_answer(scorecard: Scorecard, clock: Clock) -> None:
    target = T0 + HOUR_MS

    assert scorecard.record(forecast_answer(target, 101.0), hold_band=BAND)
    assert not scorecard.record(forecast_answer(target, 104.0), hold_band=BAND)
    clock.ms = target + HOUR_MS
    assert scorecard.observe("BTCUSDT", "1h", [kline(target, 100.5)]) == 1
    assert scorecard.observe("BTCUSDT", "1h", [kline(target, 100.5)]) == 0

    score = scorecard.summary("BTCUSDT", "1h")["24h"]
    assert (score.n, score.mae) == (1, pytest.approx(0.5))


def test_another_version_for_the_same_candle_is_kept_apart(scorecard: Scorecard, clock: Clock) -> None:
    target = T0 + HOUR_MS
    scorecard.record(forecast_answer(target, 101.0, version="v1"))
    scorecard.record(forecast_answer(target, 103.0, version="v2"))
    clock.ms = target + HOUR_MS

    assert scorecard.observe("BTCUSDT", "1h", [kline(target, 100.5)]) == 2
    assert scorecard.summary("BTCUSDT", "1h", version="v1")["24h"].mae == pytest.approx(0.5)
    assert scorecard.summary("BTCUSDT", "1h", version="v2")["24h"].mae == pytest.approx(2.5)
    assert scorecard.summary("BTCUSDT", "1h")["24h"].n == 2


def test_the_table_is_bounded_by_deleting_the_oldest_rows(tmp_path: Path, clock: Clock) -> None:
    scorecard = Scorecard(tmp_path / "bounded.db", max_rows=3, clock=clock)
    targets = [T0 + k * HOUR_MS for k in range(1, 6)]
    for target in targets:
        clock.ms = target - HOUR_MS // 2
        scorecard.record(forecast_answer(target, 101.0))
    clock.ms = targets[-1] + HOUR_MS

    assert scorecard.observe("BTCUSDT", "1h", [kline(target, 100.0) for target in targets]) == 3
    summary = scorecard.summary("BTCUSDT", "1h", windows={"all": 10 * 86_400})
    assert summary["all"].n == 3
    scorecard.close()


def test_observe_ignores_klines_that_match_nothing_and_other_series(scorecard: Scorecard, clock: Clock) -> None:
    target = T0 + HOUR_MS
    scorecard.record(forecast_answer(target, 101.0))
    scorecard.record(forecast_answer(target, 2_010.0, symbol="ETHUSDT", last_close=2_000.0))
    scorecard.record(forecast_answer(target, 101.0, interval="4h"))
    clock.ms = target + HOUR_MS
    unrelated = [kline(target - k * HOUR_MS, 99.0) for k in range(3, 0, -1)]

    assert scorecard.observe("BTCUSDT", "1h", unrelated) == 0
    assert scorecard.observe("BTCUSDT", "1h", [*unrelated, kline(target, 100.5)]) == 1

    assert scorecard.summary("BTCUSDT", "1h")["24h"].n == 1
    assert scorecard.summary("ETHUSDT", "1h")["24h"].n == 0
    assert scorecard.summary("BTCUSDT", "4h")["24h"].n == 0


def test_observe_ignores_a_candle_that_has_not_closed(scorecard: Scorecard, clock: Clock) -> None:
    target = T0 + HOUR_MS
    scorecard.record(forecast_answer(target, 101.0))
    clock.ms = target + HOUR_MS - 1

    assert scorecard.observe("BTCUSDT", "1h", [kline(target, 100.5)]) == 0
    clock.ms = target + HOUR_MS
    assert scorecard.observe("BTCUSDT", "1h", [kline(target, 100.7)]) == 1
    assert scorecard.summary("BTCUSDT", "1h")["24h"].mae == pytest.approx(0.3)


def test_an_answer_for_a_candle_already_closed_is_not_a_forecast(scorecard: Scorecard, clock: Clock) -> None:
    target = T0 + HOUR_MS
    clock.ms = target + HOUR_MS

    assert not scorecard.record(forecast_answer(target, 101.0))
    assert scorecard.observe("BTCUSDT", "1h", [kline(target, 100.5)]) == 0


def test_windows_split_by_target_time_against_the_clock(scorecard: Scorecard, clock: Clock) -> None:
    now = T0 + 10 * DAY_MS
    targets = [now - 3 * DAY_MS, now - 2 * DAY_MS, now - 5 * HOUR_MS, now - 2 * HOUR_MS]
    for target in targets:
        clock.ms = target - HOUR_MS // 2
        scorecard.record(forecast_answer(target, 101.0))
    clock.ms = now

    assert scorecard.observe("BTCUSDT", "1h", [kline(target, 100.5) for target in targets]) == 4
    summary = scorecard.summary("BTCUSDT", "1h")
    assert (summary["24h"].n, summary["7d"].n) == (2, 4)
    clock.ms = now + 6 * DAY_MS
    summary = scorecard.summary("BTCUSDT", "1h")
    assert (summary["24h"].n, summary["7d"].n) == (0, 2)


def test_a_reopened_database_keeps_the_scores(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "restart" / "scorecard.db"
    first = Scorecard(path, clock=clock)
    before = scored_case(first, clock)
    first.close()

    reopened = Scorecard(path, clock=clock)
    assert reopened.summary("BTCUSDT", "1h")["24h"] == before
    reopened.close()


LEGACY_TABLE = """
    CREATE TABLE predictions (
        id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, interval TEXT NOT NULL, version TEXT NOT NULL,
        target_ms INTEGER NOT NULL, recorded_ms INTEGER NOT NULL, last_close REAL NOT NULL, close REAL,
        lower REAL, upper REAL, level REAL, p_sell REAL, p_hold REAL, p_buy REAL, sell_below REAL, buy_above REAL,
        realized_close REAL, realized_class INTEGER, scored_ms INTEGER, UNIQUE (symbol, interval, version, target_ms)
    )
"""
"""The table as the scorecard wrote it before bands were stored as (band, σ): bounds in log return."""


def test_a_database_written_with_log_return_bounds_scores_its_pending_rows(tmp_path: Path, clock: Clock) -> None:
    """Pending rows keep their rule: ±0.01 (a band in σ, as b·σ) and log(1 ± 0.002) (a classification band);
    a row scored before the upgrade keeps its class."""
    path = tmp_path / "scorecard.db"
    rows = [  # target, realized close, sell_below, buy_above, realized_class already scored
        (T0 + HOUR_MS, 101.5, -0.01, 0.01, None),
        (T0 + 2 * HOUR_MS, 98.5, -0.01, 0.01, None),
        (T0 + 3 * HOUR_MS, 100.21, math.log1p(-0.002), math.log1p(0.002), None),
        (T0 + 4 * HOUR_MS, 100.19, math.log1p(-0.002), math.log1p(0.002), None),
        (T0 + 5 * HOUR_MS, 90.0, -0.01, 0.01, 1),
    ]
    with sqlite3.connect(path) as conn:
        conn.execute(LEGACY_TABLE)
        conn.executemany(
            "INSERT INTO predictions (symbol, interval, version, target_ms, recorded_ms, last_close, close, "
            "sell_below, buy_above, realized_close, realized_class) VALUES ('BTCUSDT', '1h', 'v1', ?, 0, 100, 101, "
            "?, ?, ?, ?)",
            [(t, lo, hi, close if scored is not None else None, scored) for t, close, lo, hi, scored in rows],
        )
    conn.close()

    upgraded = Scorecard(path, clock=clock)
    clock.ms = T0 + 6 * HOUR_MS
    assert upgraded.observe("BTCUSDT", "1h", [kline(t, close) for t, close, *_ in rows]) == 4
    upgraded.close()

    with sqlite3.connect(path) as conn:
        classes = [c for (c,) in conn.execute("SELECT realized_class FROM predictions ORDER BY target_ms")]
    conn.close()
    assert classes == [2, 0, 2, 1, 1]


def live(skill: float | None, n_price: int) -> LiveScore:
    return LiveScore(
        n=n_price,
        n_price=n_price,
        mae=None,
        mae_persistence=None,
        skill=skill,
        n_direction=0,
        direction_accuracy=None,
        brier=None,
        n_interval=0,
        coverage=None,
        coverage_level=None,
    )


def test_degraded_flags_live_skill_below_walk_forward_by_more_than_the_margin() -> None:
    assert degraded(live(-0.06, 150), 0.05, margin=0.1)
    assert not degraded(live(-0.04, 150), 0.05, margin=0.1)


def test_degraded_waits_for_enough_scored_predictions_and_a_defined_skill() -> None:
    assert not degraded(live(-0.5, 99), 0.05, margin=0.1)
    assert degraded(live(-0.5, 10), 0.05, margin=0.1, min_n=10)
    assert not degraded(live(None, 500), 0.05, margin=0.1)
    assert not degraded(live(-0.5, 500), math.nan, margin=0.1)
