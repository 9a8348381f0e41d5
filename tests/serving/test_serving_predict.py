"""POST /predict and /predictions/deep_learning against real ONNX models in a real store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from serving_helpers import CLASSES, HOUR_MS, SEQ_LEN, bearer, expected_probabilities, make_klines


def _as_of(klines: list[dict]) -> str:
    last = klines[-1].get("open_time", klines[-1].get("timestamp"))
    return datetime.fromtimestamp((last + HOUR_MS) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_regression_predicts_last_close_plus_offset(client, store):
    klines = make_klines()
    response = client.post("/predict", json={"symbol": "BTCUSDT", "interval": "1h", "klines": klines})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"]["close"] == pytest.approx(klines[-1]["close"] + 0.5, rel=1e-6)
    assert set(body["prediction"]) == {"close"}
    assert body["model_version"] == store.latest("BTCUSDT", "1h")
    assert body["as_of"] == _as_of(klines)
    assert (body["symbol"], body["interval"]) == ("BTCUSDT", "1h")


def test_seed_kline_shape_with_timestamp_alias_is_accepted(client):
    klines = make_klines(alias=True)
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines})
    assert response.status_code == 200, response.text
    assert response.json()["prediction"]["close"] == pytest.approx(klines[-1]["close"] + 0.5, rel=1e-6)
    assert response.json()["as_of"] == _as_of(klines)


def test_only_the_last_min_klines_are_used(client):
    klines = make_klines(SEQ_LEN + 30, seed=3)
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines})
    assert response.status_code == 200, response.text
    assert response.json()["prediction"]["close"] == pytest.approx(klines[-1]["close"] + 0.5, rel=1e-6)
    assert response.json()["as_of"] == _as_of(klines)


def test_classification_returns_class_confidence_and_probabilities(client):
    klines = make_klines(seed=5)
    change = np.float32(klines[-1]["close"]) - np.float32(klines[-1]["open"])
    expected = expected_probabilities(float(change))
    response = client.post("/predict", json={"symbol": "ETHUSDT", "klines": klines})
    assert response.status_code == 200, response.text
    prediction = response.json()["prediction"]
    assert list(prediction["probabilities"]) == CLASSES
    assert np.allclose([prediction["probabilities"][c] for c in CLASSES], expected, atol=1e-5)
    assert prediction["class"] == CLASSES[int(expected.argmax())]
    assert prediction["confidence"] == pytest.approx(float(expected.max()), abs=1e-5)
    assert "close" not in prediction


def test_batch_keeps_order_and_mixes_models(client):
    a, b, c = make_klines(seed=1), make_klines(seed=2), make_klines(seed=4)
    body = {
        "requests": [
            {"symbol": "BTCUSDT", "klines": a},
            {"symbol": "ETHUSDT", "klines": b},
            {"symbol": "BTCUSDT", "klines": c},
        ]
    }
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [x["symbol"] for x in answers] == ["BTCUSDT", "ETHUSDT", "BTCUSDT"]
    assert answers[0]["prediction"]["close"] == pytest.approx(a[-1]["close"] + 0.5, rel=1e-6)
    assert answers[2]["prediction"]["close"] == pytest.approx(c[-1]["close"] + 0.5, rel=1e-6)
    assert answers[1]["prediction"]["class"] in CLASSES


def test_batch_with_one_bad_request_names_its_index(client):
    body = {"requests": [{"symbol": "BTCUSDT", "klines": make_klines()}, {"symbol": "BTCUSDT", "klines": []}]}
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("requests[1]:")


def test_members_are_answered_when_asked(publish, client_factory, tokens):
    publish("SOLUSDT", "regression", members={"lstm": 1.5, "cnn": -2.0})
    client = client_factory()
    klines = make_klines(seed=9)
    response = client.post(
        "/predict", json={"symbol": "SOLUSDT", "klines": klines, "members": True}, headers=bearer(tokens["user"])
    )
    assert response.status_code == 200, response.text
    members = response.json()["members"]
    assert members["lstm"]["close"] == pytest.approx(klines[-1]["close"] + 1.5, rel=1e-6)
    assert members["cnn"]["close"] == pytest.approx(klines[-1]["close"] - 2.0, rel=1e-6)
    plain = client.post("/predict", json={"symbol": "SOLUSDT", "klines": klines}, headers=bearer(tokens["user"]))
    assert "members" not in plain.json()


def test_deep_learning_endpoint_uses_the_same_engine(client):
    klines = make_klines(seed=7)
    response = client.post("/predictions/deep_learning", json={"data": klines, "symbol": "BTCUSDT"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == [pytest.approx(klines[-1]["close"] + 0.5, rel=1e-6)]
    assert body["confidence"] == [None]
    classified = client.post("/predictions/deep_learning", json={"data": klines, "symbol": "ETHUSDT"}).json()
    assert classified["predictions"][0] in CLASSES
    assert 0 < classified["confidence"][0] <= 1


def test_deep_learning_without_symbol_needs_a_single_model(client):
    response = client.post("/predictions/deep_learning", json={"data": make_klines()})
    assert response.status_code == 422
    assert "symbol" in response.json()["detail"]


def test_lowercase_symbol_finds_the_model(client):
    response = client.post("/predict", json={"symbol": "btcusdt", "klines": make_klines()})
    assert response.status_code == 200, response.text
    assert response.json()["symbol"] == "BTCUSDT"


def test_a_configured_fetcher_serves_requests_without_klines(publish, settings):
    from litestar.testing import TestClient

    from cse_serving.app import create_app
    from cse_serving.schemas import Kline

    publish("BTCUSDT")
    klines = make_klines(seed=11)
    calls = []

    def fetch(symbol: str, interval: str, limit: int) -> list[Kline]:
        calls.append((symbol, interval, limit))
        return [Kline(**row) for row in klines[-limit:]]

    with TestClient(create_app(replace(settings, auth=False), fetcher=fetch)) as client:
        response = client.post("/predict", json={"symbol": "BTCUSDT"})
    assert response.status_code == 200, response.text
    assert response.json()["prediction"]["close"] == pytest.approx(klines[-1]["close"] + 0.5, rel=1e-6)
    assert calls == [("BTCUSDT", "1h", SEQ_LEN)]
