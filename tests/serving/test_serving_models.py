"""Model lifecycle over HTTP: readiness, reload, corruption kept out, pinning, /models and /metrics."""

from __future__ import annotations

import pytest
from serving_helpers import bearer, make_klines

from cse_models.store import MODEL_FILE


@pytest.fixture
def admin(tokens):
    return bearer(tokens["admin"])


def _predict(client, headers, symbol="BTCUSDT"):
    klines = make_klines()
    response = client.post("/predict", json={"symbol": symbol, "klines": klines}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json(), klines[-1]["close"]


def _models(client, headers):
    return {(m["symbol"], m["interval"]): m for m in client.get("/models", headers=headers).json()["models"]}


def test_readyz_is_503_with_an_empty_store(client_factory):
    client = client_factory()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["models"] == 0
    assert client.get("/healthz").status_code == 200


def test_readyz_turns_200_after_a_reload_finds_a_model(client_factory, publish, admin):
    client = client_factory()
    assert client.get("/readyz").status_code == 503
    publish("BTCUSDT")
    result = client.post("/models/reload", headers=admin).json()
    assert result["loaded"] == ["BTCUSDT 1h"]
    assert client.get("/readyz").status_code == 200


def test_models_lists_version_metrics_and_loaded_at(client_factory, publish, admin):
    v_btc = publish("BTCUSDT")
    publish("ETHUSDT", "classification")
    client = client_factory()
    assert client.get("/models/count", headers=admin).json() == {"count": 2}
    btc = _models(client, admin)["BTCUSDT", "1h"]
    assert btc["version"] == v_btc
    assert btc["metrics"] == {"validation": {"mae": 1.25}, "skill": 0.1}
    assert btc["task"] == "regression" and btc["min_klines"] == 24 and btc["loaded_at"].endswith("Z")
    assert btc["last_error"] is None and btc["pinned"] is False


def test_reload_picks_up_a_newly_published_version(client_factory, publish, admin):
    v1 = publish("BTCUSDT", offset=0.5)
    client = client_factory()
    body, close = _predict(client, admin)
    assert body["model_version"] == v1
    v2 = publish("BTCUSDT", offset=10.0)
    assert _predict(client, admin)[0]["model_version"] == v1  # no reload yet
    assert client.post("/models/reload", headers=admin).json()["loaded"] == ["BTCUSDT 1h"]
    body, close = _predict(client, admin)
    assert body["model_version"] == v2
    assert body["prediction"]["close"] == pytest.approx(close + 10.0, rel=1e-6)
    assert client.post("/models/reload", headers=admin).json()["loaded"] == []


def test_version_failing_sha256_keeps_the_old_one_serving(client_factory, publish, store, admin):
    v1 = publish("BTCUSDT")
    client = client_factory()
    v2 = publish("BTCUSDT", offset=3.0)
    path = store.version_dir("BTCUSDT", "1h", v2) / MODEL_FILE
    path.write_bytes(path.read_bytes()[:-7] + b"corrupt")
    result = client.post("/models/reload", headers=admin).json()
    assert "sha256" in result["failed"]["BTCUSDT 1h"]
    assert _predict(client, admin)[0]["model_version"] == v1
    info = _models(client, admin)["BTCUSDT", "1h"]
    assert info["version"] == v1
    assert info["last_error"]["version"] == v2 and "sha256" in info["last_error"]["message"]
    assert 'cse_model_load_failing{interval="1h",symbol="BTCUSDT"} 1.0' in client.get("/metrics").text


def test_garbage_onnx_with_a_valid_sha256_keeps_the_old_one_serving(client_factory, publish, admin):
    v1 = publish("BTCUSDT")
    client = client_factory()
    v2 = publish("BTCUSDT", model_bytes=b"\x08\x07 this is not an onnx graph")
    result = client.post("/models/reload", headers=admin).json()
    assert "onnxruntime cannot load" in result["failed"]["BTCUSDT 1h"]
    assert _predict(client, admin)[0]["model_version"] == v1
    info = _models(client, admin)["BTCUSDT", "1h"]
    assert info["last_error"]["version"] == v2
    v3 = publish("BTCUSDT", offset=1.0)
    client.post("/models/reload", headers=admin)
    info = _models(client, admin)["BTCUSDT", "1h"]
    assert info["version"] == v3 and info["last_error"] is None


def test_a_series_whose_only_version_is_broken_is_listed_with_its_error(client_factory, publish, admin):
    publish("BTCUSDT")
    v_bad = publish("XRPUSDT", model_bytes=b"garbage")
    client = client_factory()
    info = _models(client, admin)["XRPUSDT", "1h"]
    assert info["version"] is None and info["last_error"]["version"] == v_bad
    assert client.get("/models/count", headers=admin).json() == {"count": 1}
    assert client.get("/readyz").status_code == 200


def test_pin_serves_an_older_version_until_unpinned(client_factory, publish, admin):
    v1 = publish("BTCUSDT", offset=0.5)
    v2 = publish("BTCUSDT", offset=2.0)
    client = client_factory()
    assert _predict(client, admin)[0]["model_version"] == v2
    response = client.post("/models/BTCUSDT/1h/pin", json={"version": v1}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == v1 and response.json()["pinned"] is True
    body, close = _predict(client, admin)
    assert body["model_version"] == v1
    assert body["prediction"]["close"] == pytest.approx(close + 0.5, rel=1e-6)
    v3 = publish("BTCUSDT", offset=4.0)
    client.post("/models/reload", headers=admin)
    assert _predict(client, admin)[0]["model_version"] == v1  # a pin is not moved by reload
    response = client.post("/models/BTCUSDT/1h/pin", json={"version": "latest"}, headers=admin)
    assert response.json()["version"] == v3 and response.json()["pinned"] is False
    assert _predict(client, admin)[0]["model_version"] == v3


def test_pin_to_an_unknown_version_is_404_and_changes_nothing(client_factory, publish, admin):
    v1 = publish("BTCUSDT")
    client = client_factory()
    response = client.post("/models/BTCUSDT/1h/pin", json={"version": "20200101T000000Z-deadbeef"}, headers=admin)
    assert response.status_code == 404
    assert v1 in response.json()["detail"]
    response = client.post("/models/BTCUSDT/1h/pin", json={"version": "../../etc"}, headers=admin)
    assert response.status_code == 404
    assert _predict(client, admin)[0]["model_version"] == v1


def test_pin_to_a_corrupt_version_is_422_and_the_old_one_serves(client_factory, publish, store, admin):
    v1 = publish("BTCUSDT")
    client = client_factory()
    v2 = publish("BTCUSDT", model_bytes=b"garbage")
    response = client.post("/models/BTCUSDT/1h/pin", json={"version": v2}, headers=admin)
    assert response.status_code == 422
    assert _predict(client, admin)[0]["model_version"] == v1
    assert _models(client, admin)["BTCUSDT", "1h"]["pinned"] is False


def test_metrics_count_requests_predictions_and_models(client_factory, publish, admin):
    publish("BTCUSDT")
    client = client_factory()
    _predict(client, admin)
    client.post("/predict", json={"symbol": "BTCUSDT", "klines": []}, headers=admin)
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
    version = client.get("/models", headers=admin).json()["models"][0]["version"]
    assert 'cse_http_requests_total{method="POST",path="/predict",status="200"} 1.0' in text
    assert 'cse_http_requests_total{method="POST",path="/predict",status="422"} 1.0' in text
    assert 'cse_http_request_duration_seconds_count{path="/predict"} 2.0' in text
    assert f'cse_predictions_total{{interval="1h",symbol="BTCUSDT",version="{version}"}} 1.0' in text
    assert f'cse_prediction_duration_seconds_count{{interval="1h",symbol="BTCUSDT",version="{version}"}} 1.0' in text
    assert 'cse_batch_size_count{interval="1h",symbol="BTCUSDT"} 1.0' in text
    assert 'cse_series_ready{interval="1h",state="ready",symbol="BTCUSDT"} 1.0' in text
    assert "cse_models_loaded 1.0" in text
    assert "process_resident_memory_bytes" in text
