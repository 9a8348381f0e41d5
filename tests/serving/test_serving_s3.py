"""Serving from an S3 model store (moto's server on 127.0.0.1, started here): `Settings.store_root` is the
s3:// URL, versions are verified into the local cache and served, and the store watcher picks up a version
published to S3 after the start. The `store` and `settings` fixtures of serving_helpers are overridden
here, so the helpers' `publish` publishes to S3."""

from __future__ import annotations

import dataclasses
import secrets
import time
from pathlib import Path

import pytest
from moto_s3 import running_moto_s3
from serving_helpers import bearer, make_klines

from cse_models.store import ModelStore, open_store
from cse_models.store.objects import ObjectModelStore
from cse_serving.settings import Settings


@pytest.fixture(scope="module")
def moto():
    with running_moto_s3() as s3:
        yield s3


@pytest.fixture
def s3_url(moto, monkeypatch, tmp_path: Path) -> str:
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CSE_STORE_CACHE", str(tmp_path / "cache"))
    return moto.url(f"serving-{secrets.token_hex(4)}")


@pytest.fixture
def store(s3_url) -> ModelStore:
    return open_store(s3_url)


@pytest.fixture
def settings(s3_url, tmp_path: Path) -> Settings:
    return Settings(
        store_root=s3_url, db_path=tmp_path / "serving.db", scorecard_path=tmp_path / "scorecard.db", watch_interval_s=0
    )


def _predict(client, token: str) -> dict:
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": make_klines()}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def test_settings_keep_an_s3_url_and_a_local_path_apart(tmp_path):
    assert Settings(store_root="s3://bucket/prefix").store_root == "s3://bucket/prefix"
    assert Settings(store_root=str(tmp_path)).store_root == tmp_path
    assert Settings.from_env({"CSE_STORE": "s3://bucket/prefix"}).store_root == "s3://bucket/prefix"


def test_the_app_serves_a_version_published_to_s3_from_its_local_cache(
    publish, store, client_factory, tokens, tmp_path
):
    version = publish("BTCUSDT", offset=0.5)
    client = client_factory()
    klines = make_klines()
    body = _predict(client, tokens["user"])
    assert body["model_version"] == version
    assert body["prediction"]["close"] == pytest.approx(klines[-1]["close"] + 0.5, rel=1e-6)
    assert isinstance(store, ObjectModelStore)
    assert (store.cache_dir / "BTCUSDT" / "1h" / version / "model.onnx").is_file()
    assert store.cache_dir.is_relative_to(tmp_path / "cache")


def test_the_watcher_picks_up_a_version_published_to_s3_later(publish, client_factory, settings, tokens):
    first = publish("BTCUSDT", offset=0.5)
    client = client_factory(dataclasses.replace(settings, watch_interval_s=0.1))
    assert _predict(client, tokens["user"])["model_version"] == first
    second = publish("BTCUSDT", offset=2.0)
    deadline = time.monotonic() + 10
    while (body := _predict(client, tokens["user"]))["model_version"] != second:
        assert time.monotonic() < deadline, "the watcher did not pick up the new S3 version within 10 s"
        time.sleep(0.1)
    assert body["prediction"]["close"] == pytest.approx(make_klines()[-1]["close"] + 2.0, rel=1e-6)
