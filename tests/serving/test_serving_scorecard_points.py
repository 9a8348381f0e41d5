"""The scorecard's recent scored points (`Scorecard.recent_points`) and the read-only view that serves them
with the live windows (`GET /scorecard/{symbol}/{interval}`): what the web page's chart of predicted vs
realized closes draws."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from serving_helpers import assert_error, bearer
from test_serving_scorecard import (  # the constructed case and its fixtures
    CASE,
    HOUR_MS,
    T0,
    Clock,
    clock,
    forecast_answer,
    kline,
    realized_klines,
    record_case,
    scorecard,
)

from cse_serving.scorecard import Scorecard

__all__ = ["clock", "scorecard"]  # fixtures


def test_recent_points_are_the_latest_scored_predictions_oldest_first(scorecard: Scorecard, clock: Clock) -> None:
    record_case(scorecard, clock)
    clock.ms = T0 + 6 * HOUR_MS
    scorecard.observe("BTCUSDT", "1h", realized_klines()[:3])  # the fourth candle's close is not known yet

    points = scorecard.recent_points("BTCUSDT", "1h", limit=2)

    assert [p.target_ms for p in points] == [CASE[1][0], CASE[2][0]]
    assert [(p.close, p.realized_close, p.last_close) for p in points] == [(102.0, 103.0, 100.0), (99.0, 97.0, 100.0)]
    assert (points[1].lower, points[1].upper, points[1].version) == (98.0, 102.0, "v1")


def test_recent_points_pool_versions_and_keep_withheld_heads_null(scorecard: Scorecard, clock: Clock) -> None:
    target = T0 + HOUR_MS
    clock.ms = target - HOUR_MS // 2
    scorecard.record(forecast_answer(target, 101.0, (99.0, 102.0), version="v1"))
    scorecard.record(forecast_answer(target, 103.0, None, version="v2"))
    clock.ms = target + 2 * HOUR_MS
    scorecard.observe("BTCUSDT", "1h", [kline(target, 102.0)])

    points = scorecard.recent_points("BTCUSDT", "1h", limit=10)

    assert {p.version: (p.close, p.lower, p.upper) for p in points} == {
        "v1": (101.0, 99.0, 102.0),
        "v2": (103.0, None, None),
    }
    assert scorecard.recent_points("ETHUSDT", "1h", limit=10) == []
    assert len(scorecard.recent_points("BTCUSDT", "1h", limit=10, version="v2")) == 1


def fill_scorecard(path: Path, version: str, n: int) -> list[int]:
    """`n` hourly BTCUSDT 1h predictions of `version` served in the last hours, all scored → their targets."""
    now_ms = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    clock = Clock(now_ms)
    card = Scorecard(path, clock=clock)
    targets = [now_ms - (n + 1 - i) * HOUR_MS for i in range(n)]
    for i, target in enumerate(targets):
        clock.ms = target - HOUR_MS // 2
        assert card.record(forecast_answer(target, 100.0 + i, (95.0 + i, 105.0 + i), version=version))
    clock.ms = now_ms
    assert card.observe("BTCUSDT", "1h", [kline(t, 100.5 + i) for i, t in enumerate(targets)]) == n
    card.close()
    return targets


def test_the_scorecard_view_serves_windows_and_points(publish, settings, client_factory, tokens) -> None:
    version = publish("BTCUSDT", "forecast")
    targets = fill_scorecard(settings.scorecard_path, version, 5)
    client = client_factory()

    assert_error(client.get("/scorecard/BTCUSDT/1h"), 401, "API token is required")
    body = client.get("/scorecard/BTCUSDT/1h?limit=3", headers=bearer(tokens["user"])).json()

    assert (body["version"], body["enabled"]) == (version, True)
    assert [p["target_ms"] for p in body["points"]] == targets[-3:]
    assert body["points"][-1]["realized_close"] == 104.5
    assert body["windows"]["24h"]["n"] == 5 and body["windows"]["24h"]["coverage"] == 1.0


def test_the_scorecard_view_says_when_the_scorecard_is_off(publish, settings, client_factory, tokens) -> None:
    publish("BTCUSDT", "forecast")
    client = client_factory(dataclasses.replace(settings, scorecard_path=None))

    body = client.get("/scorecard/BTCUSDT/1h", headers=bearer(tokens["user"])).json()

    assert (body["enabled"], body["windows"], body["points"]) == (False, {}, [])
    assert_error(client.get("/scorecard/DOGEUSDT/1h", headers=bearer(tokens["user"])), 404)
    assert_error(client.get("/scorecard/BTCUSDT/1h?limit=0", headers=bearer(tokens["user"])), 400)
