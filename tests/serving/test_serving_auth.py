"""Tokens: hashed at rest, checked on every protected route, admin-only levers, revocation is immediate."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest
from serving_helpers import bearer, make_klines

from cse_models.errors import ConfigError
from cse_serving.auth import TokenStore, hash_token


@pytest.fixture
def client(publish, client_factory, tokens):
    publish("BTCUSDT", "regression")
    return client_factory()


PROTECTED = [
    ("GET", "/models", None),
    ("GET", "/models/count", None),
    ("POST", "/predict", {"symbol": "BTCUSDT", "klines": make_klines()}),
    ("POST", "/predictions/deep_learning", {"data": make_klines()}),
    ("POST", "/models/reload", None),
    ("POST", "/models/BTCUSDT/1h/pin", {"version": "latest"}),
]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_missing_token_is_401(client, method, path, body):
    response = client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"status_code", "detail"}


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_wrong_token_is_401(client, method, path, body):
    response = client.request(method, path, json=body, headers=bearer("not-a-real-token"))
    assert response.status_code == 401
    assert "unknown or revoked" in response.json()["detail"]


def test_malformed_authorization_header_is_401(client, tokens):
    response = client.get("/models", headers={"Authorization": f"Token {tokens['user']}"})
    assert response.status_code == 401


def test_user_token_works_as_bearer_and_as_api_key(client, tokens):
    assert client.get("/models/count", headers=bearer(tokens["user"])).json() == {"count": 1}
    assert client.get("/models/count", headers={"X-API-Key": tokens["user"]}).json() == {"count": 1}


@pytest.mark.parametrize(
    ("path", "body"), [("/models/reload", None), ("/models/BTCUSDT/1h/pin", {"version": "latest"})]
)
def test_user_token_on_admin_route_is_403(client, tokens, path, body):
    response = client.post(path, json=body, headers=bearer(tokens["user"]))
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


def test_admin_token_may_reload(client, tokens):
    assert client.post("/models/reload", headers=bearer(tokens["admin"])).status_code == 200


def test_revocation_takes_effect_without_restart(client, tokens, settings):
    assert client.get("/models", headers=bearer(tokens["user"])).status_code == 200
    other = TokenStore(settings.db_path)
    assert other.revoke("alice")
    other.close()
    assert client.get("/models", headers=bearer(tokens["user"])).status_code == 401


def test_open_routes_need_no_token(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/schema/openapi.json").status_code == 200


def test_auth_can_be_switched_off(publish, client_factory, settings):
    publish("BTCUSDT", "regression")
    client = client_factory(replace(settings, auth=False))
    assert client.post("/predict", json={"symbol": "BTCUSDT", "klines": make_klines()}).status_code == 200
    assert client.post("/models/reload").status_code == 200


def test_tokens_are_stored_only_as_sha256(tmp_path):
    store = TokenStore(tmp_path / "t.db")
    token = store.create("o'brien; DROP TABLE tokens;--", "admin")
    store.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("t.db*"))
    assert token.encode() not in raw
    with sqlite3.connect(tmp_path / "t.db") as conn:
        rows = conn.execute("SELECT name, token_sha256, role FROM tokens").fetchall()
    assert rows == [("o'brien; DROP TABLE tokens;--", hash_token(token), "admin")]
    assert len(token) >= 40


def test_token_store_rejects_duplicates_and_unknown_roles(tmp_path):
    store = TokenStore(tmp_path / "t.db")
    store.create("bob")
    with pytest.raises(ConfigError):
        store.create("bob")
    with pytest.raises(ConfigError):
        store.create("carol", "root")
    assert [r.name for r in store.list()] == ["bob"]
    assert store.revoke("bob") and not store.revoke("bob")
    assert store.list()[0].revoked
    store.close()
