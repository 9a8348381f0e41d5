"""Every bad input gets a 4xx with a JSON `{status_code, detail}` that says what is wrong — never a 5xx."""

from __future__ import annotations

import json

import pytest
from serving_helpers import SEQ_LEN, assert_error, bearer, make_klines, post_raw


@pytest.fixture
def client(publish, client_factory, tokens):
    publish("BTCUSDT", "regression")
    client = client_factory()
    client.headers.update(bearer(tokens["user"]))
    return client


def _with(index: int, **changes) -> list[dict]:
    klines = make_klines()
    klines[index] = {**klines[index], **changes}
    return klines


@pytest.mark.parametrize(
    ("klines", "status", "fragments"),
    [
        (make_klines(SEQ_LEN - 1), 422, ("insufficient history: 23 candles, 24 needed",)),
        ([], 422, ("insufficient history: 0 candles, 24 needed",)),
        (_with(3, open="NaN"), 422, ("klines[3].open", "finite")),
        (_with(5, close="inf"), 422, ("klines[5].close", "finite")),
        (_with(2, low=-1.0), 422, ("klines[2].low", "> 0")),
        (_with(7, open=0.0), 422, ("klines[7].open", "> 0")),
        (_with(4, volume=-3.0), 422, ("klines[4].volume",)),
        (_with(6, high=1.0, low=2.0), 422, ("klines[6]", "high", "low")),
        (_with(9, open_time=make_klines()[8]["open_time"]), 422, ("klines[9].open_time", "oldest first")),
        (_with(9, open_time=0), 422, ("klines[9].open_time",)),
        (_with(1, open="abc"), 400, ("Expected `float`, got `str`", "klines[1].open")),
        (_with(1, high=[1.0]), 400, ("klines[1].high",)),
        (_with(1, close=True), 400, ("klines[1].close",)),
        (_with(1, open_time="yesterday"), 400, ("klines[1].open_time",)),
        (
            [{k: v for k, v in row.items() if k != "open_time"} for row in make_klines()],
            422,
            ("klines[0]", "open_time"),
        ),
        ([{k: v for k, v in row.items() if k != "close"} for row in make_klines()], 400, ("close",)),
        ("x", 400, ("klines",)),
    ],
    ids=[
        "too-few",
        "empty",
        "nan-string",
        "inf-string",
        "negative-price",
        "zero-price",
        "negative-volume",
        "high-below-low",
        "duplicate-time",
        "decreasing-time",
        "price-not-number",
        "price-list",
        "price-bool",
        "time-string",
        "no-open-time",
        "no-close",
        "klines-not-list",
    ],
)
def test_bad_klines_are_rejected_with_a_reason(client, klines, status, fragments):
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines})
    assert_error(response, status, *fragments)


def test_nan_token_in_json_is_malformed(client):
    text = json.dumps({"symbol": "BTCUSDT", "klines": make_klines()})
    first_open = repr(make_klines()[0]["open"])
    assert first_open in text
    assert_error(post_raw(client, "/predict", text.replace(first_open, "NaN", 1).encode()), 400)


def test_huge_number_overflowing_to_inf_is_rejected(client):
    text = json.dumps({"symbol": "BTCUSDT", "klines": make_klines()})
    first_open = repr(make_klines()[0]["open"])
    response = post_raw(client, "/predict", text.replace(first_open, "1e999", 1).encode())
    assert 400 <= response.status_code < 500
    assert set(response.json()) == {"status_code", "detail"}


def test_malformed_json_is_400(client):
    assert_error(post_raw(client, "/predict", b'{"symbol": "BTCUSDT", "klines": ['), 400)


def test_empty_body_is_400(client):
    assert_error(post_raw(client, "/predict", b""), 400, "body is required")


def test_array_body_is_400(client):
    assert_error(client.post("/predict", json=[1, 2]), 400, "object")


def test_symbol_of_wrong_type_is_400(client):
    assert_error(client.post("/predict", json={"symbol": 5, "klines": make_klines()}), 400, "symbol")


def test_missing_symbol_is_422(client):
    assert_error(client.post("/predict", json={"klines": make_klines()}), 422, "symbol")


def test_missing_klines_says_fetching_is_not_configured(client):
    assert_error(client.post("/predict", json={"symbol": "BTCUSDT"}), 422, "not configured", "24")


def test_unknown_symbol_is_404_listing_loaded_models(client):
    assert_error(
        client.post("/predict", json={"symbol": "DOGEUSDT", "klines": make_klines()}), 404, "DOGEUSDT", "BTCUSDT 1h"
    )


def test_unknown_interval_is_404(client):
    response = client.post("/predict", json={"symbol": "BTCUSDT", "interval": "7m", "klines": make_klines()})
    assert_error(response, 404, "7m", "BTCUSDT 1h")


def test_ten_megabyte_body_is_413(client):
    body = b'{"symbol": "BTCUSDT", "pad": "' + b"x" * 10_000_000 + b'"}'
    assert_error(client.post("/predict", content=body, headers={"Content-Type": "application/json"}), 413)


def test_empty_batch_is_422(client):
    assert_error(client.post("/predict", json={"requests": []}), 422, "requests")


def test_bad_pin_body_is_400(publish, client_factory, tokens):
    client = client_factory()
    response = client.post("/models/BTCUSDT/1h/pin", json={"ver": 1}, headers=bearer(tokens["admin"]))
    assert_error(response, 400, "version")


@pytest.mark.parametrize("open_time", [-1, 2**63 - 1, 2**64])
def test_open_time_out_of_range_is_400(client, open_time):
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": _with(23, open_time=open_time)})
    assert_error(response, 400, "klines[23].open_time")


def test_prices_beyond_float32_are_422_not_500(client):
    klines = [{**row, "open": 1e300, "high": 1e300} for row in make_klines()]
    assert_error(client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines}), 422, "float32")


def test_symbol_longer_than_any_market_is_400(client):
    assert_error(client.post("/predict", json={"symbol": "B" * 1000, "klines": make_klines()}), 400, "symbol")


def test_pin_with_a_path_like_symbol_is_400(client, tokens):
    response = client.post("/models/%2e%2e/1h/pin", json={"version": "latest"}, headers=bearer(tokens["admin"]))
    assert_error(response, 400, "symbol")
