"""GET /klines/{symbol}/{interval}: the recent candles of the server-side source (the web page's chart)."""

from __future__ import annotations

import dataclasses

from serving_helpers import bearer


def test_recent_klines_come_from_the_sample_source(publish, client_factory, settings, tokens):
    publish("BTCUSDT")
    client = client_factory(dataclasses.replace(settings, source="sample"))
    response = client.get("/klines/BTCUSDT/1h", params={"limit": 50}, headers=bearer(tokens["user"]))
    assert response.status_code == 200, response.text
    klines = response.json()["klines"]
    assert len(klines) == 50
    opens = [k["open_time"] for k in klines]
    assert opens == sorted(opens)


def test_recent_klines_need_a_token_a_source_and_a_known_series(publish, client_factory, tokens):
    publish("BTCUSDT")
    client = client_factory()
    assert client.get("/klines/BTCUSDT/1h").status_code == 401
    no_source = client.get("/klines/BTCUSDT/1h", headers=bearer(tokens["user"]))
    assert no_source.status_code == 422
    assert "CSE_SERVING_SOURCE" in no_source.json()["detail"]
    assert client.get("/klines/DOGEUSDT/1h", headers=bearer(tokens["user"])).status_code == 404
    assert client.get("/klines/BTCUSDT/1h?limit=0", headers=bearer(tokens["user"])).status_code == 400


def test_the_page_is_public_and_not_in_the_api_document(client_factory):
    client = client_factory()
    page = client.get("/")
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers
    assert "/" not in client.get("/schema/openapi.json").json()["paths"]
