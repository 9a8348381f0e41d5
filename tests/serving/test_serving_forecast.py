"""The multi-head forecast task end to end: the card, withheld heads, scale invariance, members, batches.

The fixture graph (serving_helpers.forecast_onnx) answers exact arithmetic of its two inputs, so each
expected value below is computed independently of serving: close = last_close · e^0.01 in float32,
volatility = the trailing 24-candle realized volatility of the klines' log returns.
"""

from __future__ import annotations

import asyncio

import msgspec
import numpy as np
import pytest
from serving_helpers import (
    CLASSES,
    FORECAST_DRIFT,
    FORECAST_HALF_WIDTH,
    FORECAST_LOGITS,
    FORECAST_MIN_KLINES,
    bearer,
    make_klines,
)

from cse_serving.model_registry import ModelRegistry
from cse_serving.monitoring import ServingMetrics
from cse_serving.predictor import Predictor
from cse_serving.schemas import Kline, PredictRequest

ALL_HEADS = {"price": True, "interval": True, "volatility": True, "direction": True}


@pytest.fixture
def client(publish, client_factory, tokens):
    """BTCUSDT: forecast with the default verdicts (direction withheld); ETHUSDT: forecast, all heads
    published, with members; XRPUSDT: forecast with price withheld; SOLUSDT: a legacy regression model."""
    publish("BTCUSDT", "forecast")
    publish("ETHUSDT", "forecast", heads=ALL_HEADS, members={"lstm": 0.03, "cnn": -0.01})
    publish("XRPUSDT", "forecast", heads={**ALL_HEADS, "price": False})
    publish("SOLUSDT", "regression")
    client = client_factory()
    client.headers.update(bearer(tokens["user"]))
    return client


def _klines(seed: int = 0) -> list[dict]:
    return make_klines(FORECAST_MIN_KLINES, seed=seed)


def _f32_times(close: float, log_factor: float) -> float:
    return float(np.float32(close) * np.float32(np.exp(log_factor)))


def _rv_24(klines: list[dict]) -> float:
    log_close = np.log([k["close"] for k in klines])
    return float(np.sqrt(np.mean(np.diff(log_close)[-24:] ** 2)))


def _softmax() -> list[float]:
    e = np.exp(np.array(FORECAST_LOGITS) - max(FORECAST_LOGITS))
    return (e / e.sum()).tolist()


def _forecast(client, symbol: str, klines: list[dict], **extra) -> dict:
    response = client.post("/predict", json={"symbol": symbol, "klines": klines, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_card_has_exact_values_of_every_published_head(client):
    klines = _klines(seed=1)
    last = klines[-1]["close"]
    card = _forecast(client, "ETHUSDT", klines)["forecast"]
    assert card["last_close"] == last
    assert card["close"] == _f32_times(last, FORECAST_DRIFT)
    assert card["return"] == float(np.float32(FORECAST_DRIFT))
    assert card["interval"] == {
        "lower": _f32_times(last, -FORECAST_HALF_WIDTH),
        "upper": _f32_times(last, FORECAST_HALF_WIDTH),
        "level": 0.9,
    }
    assert card["volatility"] == pytest.approx(_rv_24(klines), rel=1e-5)
    direction = card["direction"]
    assert list(direction["probabilities"]) == CLASSES
    assert list(direction["probabilities"].values()) == pytest.approx(_softmax(), abs=1e-6)
    assert direction["class"] == "buy" and direction["confidence"] == pytest.approx(max(_softmax()), abs=1e-6)
    assert card["skill"] == pytest.approx({"price": 0.05, "interval": 0.1, "volatility": 0.15, "direction": 0.2})


def test_forecast_answer_keeps_the_legacy_prediction_view(client):
    klines = _klines(seed=2)
    body = _forecast(client, "ETHUSDT", klines)
    card, prediction = body["forecast"], body["prediction"]
    assert prediction["close"] == card["close"]
    assert prediction["class"] == card["direction"]["class"]
    assert prediction["probabilities"] == card["direction"]["probabilities"]
    assert body["model_version"] and body["as_of"].endswith("Z")


def test_a_withheld_head_is_null_in_predict_and_explained_in_models(client):
    body = _forecast(client, "BTCUSDT", _klines(seed=3))
    card = body["forecast"]
    assert card["direction"] is None
    assert card["close"] is not None and card["interval"] is not None and card["volatility"] is not None
    assert "direction" not in card["skill"]
    assert set(body["prediction"]) == {"close"}
    models = {m["symbol"]: m for m in client.get("/models").json()["models"]}
    heads = {h["name"]: h for h in models["BTCUSDT"]["heads"]}
    assert list(heads) == ["price", "interval", "volatility", "direction"]
    assert heads["direction"]["publish"] is False
    assert heads["direction"]["reason"] == "direction withheld: skill not significant (p 0.4)"
    assert heads["direction"]["reference"] == "direction_baseline" and heads["direction"]["skill"] == 0.2
    assert heads["price"]["publish"] is True and heads["price"]["outputs"] == ["close", "return"]
    assert models["SOLUSDT"]["heads"] == []


def test_withheld_price_head_nulls_close_and_return(client):
    card = _forecast(client, "XRPUSDT", _klines(seed=4))["forecast"]
    assert card["close"] is None and card["return"] is None
    assert card["direction"]["class"] == "buy"


def test_too_few_klines_is_422_naming_the_number_needed(client):
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": _klines()[1:]})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert f"candles, {FORECAST_MIN_KLINES} needed" in detail and "warm-up 168" in detail
    assert detail.startswith("insufficient history: ")


def test_a_last_close_beyond_float32_is_422(client):
    klines = _klines()
    klines = [{**k, **{c: k[c] * 1e37 for c in ("open", "high", "low", "close")}} for k in klines]
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines})
    assert response.status_code == 422, response.text
    assert "float32" in response.json()["detail"]


def test_scaling_every_price_scales_the_price_heads_only(client):
    klines = _klines(seed=5)
    scaled = [{**k, **{c: k[c] * 1000 for c in ("open", "high", "low", "close")}} for k in klines]
    base = _forecast(client, "ETHUSDT", klines)["forecast"]
    big = _forecast(client, "ETHUSDT", scaled)["forecast"]
    for field in ("last_close", "close"):
        assert big[field] == pytest.approx(base[field] * 1000, rel=1e-6)
    for bound in ("lower", "upper"):
        assert big["interval"][bound] == pytest.approx(base["interval"][bound] * 1000, rel=1e-6)
    assert big["return"] == base["return"]
    assert big["volatility"] == pytest.approx(base["volatility"], rel=1e-5)
    assert big["direction"] == base["direction"]


def test_members_answer_their_own_cards(client):
    klines = _klines(seed=6)
    last = klines[-1]["close"]
    body = _forecast(client, "ETHUSDT", klines, members=True)
    cards = body["member_forecasts"]
    assert sorted(cards) == ["cnn", "lstm"]
    for name, drift in (("lstm", 0.03), ("cnn", -0.01)):
        assert cards[name]["close"] == _f32_times(last, drift)
        assert cards[name]["return"] == float(np.float32(drift))
        assert body["members"][name]["close"] == cards[name]["close"]
        assert cards[name]["skill"] == {} and cards[name]["direction"] == body["forecast"]["direction"]
    plain = _forecast(client, "ETHUSDT", klines)
    assert "members" not in plain and "member_forecasts" not in plain


def test_batch_mixes_forecast_and_legacy_models(client):
    a, b, c = _klines(seed=7), _klines(seed=8), make_klines(seed=9)
    body = {
        "requests": [
            {"symbol": "ETHUSDT", "klines": a},
            {"symbol": "SOLUSDT", "klines": c},
            {"symbol": "ETHUSDT", "klines": b, "members": True},
        ]
    }
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    first, legacy, third = response.json()["predictions"]
    assert first["forecast"]["close"] == _f32_times(a[-1]["close"], FORECAST_DRIFT)
    assert third["forecast"]["close"] == _f32_times(b[-1]["close"], FORECAST_DRIFT)
    assert first["forecast"]["volatility"] == pytest.approx(_rv_24(a), rel=1e-5)
    assert third["forecast"]["volatility"] == pytest.approx(_rv_24(b), rel=1e-5)
    assert third["member_forecasts"]["lstm"]["close"] == _f32_times(b[-1]["close"], 0.03)
    assert "member_forecasts" not in first
    assert "forecast" not in legacy and legacy["prediction"]["close"] == pytest.approx(c[-1]["close"] + 0.5)


def test_concurrent_forecasts_share_one_inference_call(publish, store, settings):
    publish("ETHUSDT", "forecast", heads=ALL_HEADS)
    registry = ModelRegistry(store, settings)
    registry.sync()
    predictor = Predictor(registry, ServingMetrics())
    seeds = list(range(5))

    async def one(seed: int):
        request = PredictRequest(symbol="ETHUSDT", klines=msgspec.convert(_klines(seed), list[Kline]))
        return (await predictor.predict([request]))[0]

    async def run() -> list:
        return await asyncio.gather(*(one(s) for s in seeds))

    answers = asyncio.run(run())
    batcher = predictor.batcher(registry.get("ETHUSDT", "1h"))
    assert (batcher.calls, batcher.rows) == (1, 5)
    for seed, answer in zip(seeds, answers, strict=True):
        klines = _klines(seed)
        assert answer.forecast.close == _f32_times(klines[-1]["close"], FORECAST_DRIFT)
        assert answer.forecast.volatility == pytest.approx(_rv_24(klines), rel=1e-5)


def test_interval_level_defaults_to_point_eight_without_a_calibration_record(publish, client_factory, tokens):
    publish("BTCUSDT", "forecast", level=None)
    client = client_factory()
    client.headers.update(bearer(tokens["user"]))
    assert _forecast(client, "BTCUSDT", _klines())["forecast"]["interval"]["level"] == 0.8


def test_deep_learning_answers_close_else_class(client):
    klines = _klines(seed=10)
    priced = client.post("/predictions/deep_learning", json={"data": klines, "symbol": "BTCUSDT"}).json()
    assert priced["predictions"] == [_f32_times(klines[-1]["close"], FORECAST_DRIFT)]
    assert priced["confidence"] == [None]
    classed = client.post("/predictions/deep_learning", json={"data": klines, "symbol": "XRPUSDT"}).json()
    assert classed["predictions"] == ["buy"]
    assert classed["confidence"] == [pytest.approx(max(_softmax()), abs=1e-6)]


def test_monitoring_views_serve_forecast_models(client):
    body = _forecast(client, "XRPUSDT", _klines(seed=11))
    latest = client.get("/predictions/latest").json()["predictions"]
    assert latest == [body]
    view = client.get("/metrics/deep_learning")
    assert view.status_code == 200, view.text
    rows = {row["symbol"]: row for row in view.json()["models"]}
    assert rows["XRPUSDT"]["predictions_served"] == 1
    assert rows["XRPUSDT"]["model_confidence"] == pytest.approx(max(_softmax()), abs=1e-6)


def test_a_forecast_manifest_on_a_one_input_graph_is_not_served(publish, client_factory, tokens, tmp_path):
    from serving_helpers import regression_onnx

    graph = regression_onnx(tmp_path / "one_input.onnx").read_bytes()
    publish("BTCUSDT", "forecast", model_bytes=graph)
    client = client_factory()
    [info] = client.get("/models", headers=bearer(tokens["admin"])).json()["models"]
    assert info["version"] is None
    assert "no input 'last_close'" in info["last_error"]["message"]
