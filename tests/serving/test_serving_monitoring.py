"""The seed's monitoring views: GET /predictions/latest and GET /metrics/deep_learning."""

from __future__ import annotations

import pytest
from serving_helpers import make_klines


def test_latest_predictions_are_the_last_answers_served(client):
    first = client.post("/predict", json={"symbol": "BTCUSDT", "klines": make_klines(seed=1)}).json()
    second = client.post("/predict", json={"symbol": "BTCUSDT", "klines": make_klines(seed=2)}).json()
    eth = client.post("/predict", json={"symbol": "ETHUSDT", "klines": make_klines(seed=3)}).json()
    latest = client.get("/predictions/latest").json()["predictions"]
    assert latest == [second, eth]
    assert first["prediction"] != second["prediction"]


def test_deep_learning_metrics_report_served_counts_confidence_and_latency(client):
    before = client.get("/metrics/deep_learning").json()
    assert before["prediction_latency"] is None
    answers = [
        client.post("/predict", json={"symbol": "ETHUSDT", "klines": make_klines(seed=s)}).json() for s in range(3)
    ]
    client.post("/predict", json={"symbol": "BTCUSDT", "klines": make_klines()})
    view = client.get("/metrics/deep_learning").json()
    rows = {row["symbol"]: row for row in view["models"]}
    assert rows["ETHUSDT"]["predictions_served"] == 3
    mean_confidence = sum(a["prediction"]["confidence"] for a in answers) / 3
    assert rows["ETHUSDT"]["model_confidence"] == pytest.approx(mean_confidence)
    assert rows["BTCUSDT"]["model_confidence"] is None and rows["BTCUSDT"]["predictions_served"] == 1
    assert view["prediction_latency"] > 0


def test_monitoring_views_need_a_token(client):
    client.headers.pop("Authorization")
    assert client.get("/predictions/latest").status_code == 401
    assert client.get("/metrics/deep_learning").status_code == 401
