"""The live scorecard as served: a forecast is recorded when answered, scored when a later request brings
its candle, and shown per serving version in /metrics/deep_learning and Prometheus.

The fixture forecast graph is exact arithmetic (serving_helpers), so every expected score below is
computed by hand from the klines: MAE against the realized close, persistence, interval coverage, the
realized Sell/Hold/Buy class from the trailing volatility band, Brier."""

from __future__ import annotations

import asyncio

import msgspec
import numpy as np
import pytest
from serving_helpers import (
    FORECAST_LOGITS,
    FORECAST_MIN_KLINES,
    HOLD_BAND_SIGMAS,
    HOUR_MS,
    START_MS,
    bearer,
    make_klines,
)

from cse_serving.live import LiveScorecard
from cse_serving.model_registry import ModelRegistry
from cse_serving.monitoring import ServingMetrics
from cse_serving.predictor import Predictor
from cse_serving.schemas import Kline, PredictRequest, PredictResponse
from cse_serving.scorecard import Scorecard

ALL_HEADS = {"price": True, "interval": True, "volatility": True, "direction": True}
N = FORECAST_MIN_KLINES


def _ask(predictor: Predictor, klines: list[dict]) -> PredictResponse:
    request = PredictRequest(symbol="ETHUSDT", klines=msgspec.convert(klines, list[Kline]))
    return asyncio.run(predictor.predict([request]))[0]


def _rv_24(klines: list[dict]) -> float:
    log_close = np.log([k["close"] for k in klines])
    return float(np.sqrt(np.mean(np.diff(log_close)[-24:] ** 2)))


def test_a_served_forecast_is_scored_when_its_candle_arrives(publish, store, settings, tmp_path):
    publish("ETHUSDT", "forecast", heads=ALL_HEADS)
    registry = ModelRegistry(store, settings)
    registry.sync()
    klines = make_klines(N + 1, seed=4)
    last_open = START_MS + (N - 1) * HOUR_MS
    now = [(last_open + 1.5 * HOUR_MS) / 1000]  # the predicted candle is open, not closed
    live = LiveScorecard(Scorecard(tmp_path / "live.db", clock=lambda: now[0]), margin=0.02)
    predictor = Predictor(registry, ServingMetrics(), scorecard=live)

    first = _ask(predictor, klines[:N])
    assert _ask(predictor, klines[:N]) == first  # asked again: recorded once
    now[0] += HOUR_MS / 1000  # the predicted candle has closed; the next request brings it
    _ask(predictor, klines[1:])

    score = live.scores(registry.get("ETHUSDT", "1h"))["24h"]
    realized, last = klines[N]["close"], klines[N - 1]["close"]
    card = first.forecast
    assert score.n == 1
    assert score.mae == pytest.approx(abs(card.close - realized))
    assert score.mae_persistence == pytest.approx(abs(last - realized))
    assert score.skill == pytest.approx(1 - abs(card.close - realized) / abs(last - realized))
    assert score.walk_forward_skill == pytest.approx(0.05)  # the fixture's price head skill
    assert score.degraded is False  # one candle is noise, not decay
    assert score.coverage == float(card.interval.lower <= realized <= card.interval.upper)
    band = HOLD_BAND_SIGMAS * _rv_24(klines[:N])
    move = np.log(realized / last)
    label = 2 if move > band else 0 if move < -band else 1
    probabilities = np.exp(FORECAST_LOGITS) / np.exp(FORECAST_LOGITS).sum()
    assert score.direction_accuracy == float(np.argmax(probabilities) == label)
    assert score.brier == pytest.approx(float(np.sum((probabilities - np.eye(3)[label]) ** 2)), rel=1e-5)
    live.close()


def test_the_monitoring_view_and_prometheus_carry_the_live_scores(publish, client_factory, tokens):
    publish("ETHUSDT", "forecast", heads=ALL_HEADS)
    client = client_factory()
    client.headers.update(bearer(tokens["user"]))
    [row] = client.get("/metrics/deep_learning").json()["models"]
    assert set(row["live"]) == {"24h", "7d"}
    assert row["live"]["7d"]["n"] == 0 and row["live"]["7d"]["walk_forward_skill"] == pytest.approx(0.05)
    text = client.get("/metrics").text
    assert f'cse_live_scored{{interval="1h",symbol="ETHUSDT",version="{row["model_version"]}",window="7d"}} 0.0' in text
