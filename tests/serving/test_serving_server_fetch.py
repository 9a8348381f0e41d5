"""/predict with only a symbol: the app fetches the latest closed klines itself (Make Us Rich's
`/predict?currency=`), here through the real python-binance client against the fake Binance server on
127.0.0.1, cached until the next candle closes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from fake_binance import HOUR, SERIES_START, epoch_ms, fake_kline, serve_fake_binance
from serving_helpers import bearer

HOUR_MS = int(HOUR.total_seconds() * 1000)


def test_predict_without_klines_answers_from_the_exchange(publish, client_factory, settings, tokens):
    publish("BTCUSDT", offset=0.5)  # the fixture model answers the last close + 0.5
    with serve_fake_binance() as fake:
        fake.now_ms = epoch_ms(datetime.now(UTC))  # a live exchange: the current candle is open
        client = client_factory(dataclasses.replace(settings, source="binance", binance_api_url=fake.url))
        client.headers.update(bearer(tokens["user"]))
        answer = client.post("/predict", json={"symbol": "BTCUSDT"})
        assert answer.status_code == 200, answer.text
        requests_made = len(fake.requests)
        again = client.post("/predict", json={"symbol": "BTCUSDT"})
        assert len(fake.requests) == requests_made  # the same candle: served from the cache

    last_closed = (fake.now_ms - epoch_ms(SERIES_START)) // HOUR_MS - 1
    row = fake_kline("BTCUSDT", HOUR_MS, last_closed)
    as_of = datetime.fromtimestamp((row[0] + HOUR_MS) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert answer.json()["as_of"] == as_of == again.json()["as_of"]
    assert answer.json()["prediction"]["close"] == pytest.approx(float(row[4]) + 0.5, rel=1e-6)


def test_without_a_source_klines_are_required(publish, client_factory, tokens):
    publish("BTCUSDT")
    client = client_factory()
    response = client.post("/predict", json={"symbol": "BTCUSDT"}, headers=bearer(tokens["user"]))
    assert response.status_code == 422
    assert "klines are required" in response.json()["detail"]


def test_an_exchange_that_bans_us_is_a_503(publish, client_factory, settings, tokens):
    publish("BTCUSDT")
    with serve_fake_binance() as fake:
        fake.banned = True
        client = client_factory(dataclasses.replace(settings, source="binance", binance_api_url=fake.url))
        response = client.post("/predict", json={"symbol": "BTCUSDT"}, headers=bearer(tokens["user"]))
    assert response.status_code == 503
    assert response.json()["status_code"] == 503
