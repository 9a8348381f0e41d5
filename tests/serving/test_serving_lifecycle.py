"""What serves, and when it changes: the store watcher, the version policy (latest / pinned / a named
loaded version), pins kept in the store, fallback from a bad LATEST, readiness per series, output names
from the manifest, and what a user token may see of a load error."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from serving_helpers import bearer, make_klines, manifest_for, regression_onnx, version_at, wait_for

from cse_models.store import LATEST, MODEL_FILE, ModelStore, TensorSpec
from cse_serving.app import create_app


@pytest.fixture
def admin(tokens):
    return bearer(tokens["admin"])


@pytest.fixture
def user(tokens):
    return bearer(tokens["user"])


def _version_served(client, headers, **extra) -> str:
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": make_klines(), **extra}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["model_version"]


def _models(client, headers) -> dict:
    return {(m["symbol"], m["interval"]): m for m in client.get("/models", headers=headers).json()["models"]}


# ----------------------------------------------------------------------------- watcher
def test_the_watcher_alone_picks_up_a_new_version(publish, client_factory, settings, admin):
    v1 = publish("BTCUSDT", offset=0.5)
    client = client_factory(dataclasses.replace(settings, watch_interval_s=0.1))
    assert _version_served(client, admin) == v1
    v2 = publish("BTCUSDT", offset=2.0)
    wait_for(lambda: _version_served(client, admin) == v2)
    loads = client.get("/metrics").text
    assert 'cse_model_loads_total{interval="1h",outcome="loaded",symbol="BTCUSDT"} 2.0' in loads


def test_without_the_watcher_nothing_changes_until_a_reload(publish, client_factory, admin):
    v1 = publish("BTCUSDT")
    client = client_factory()
    v2 = publish("BTCUSDT", offset=3.0)
    time.sleep(0.3)
    assert _version_served(client, admin) == v1
    client.post("/models/reload", headers=admin)
    assert _version_served(client, admin) == v2


def test_the_watcher_follows_a_pin_written_by_another_process(publish, store, client_factory, settings, admin):
    v1 = publish("BTCUSDT")
    v2 = publish("BTCUSDT", offset=3.0)
    client = client_factory(dataclasses.replace(settings, watch_interval_s=0.1))
    assert _version_served(client, admin) == v2
    store.pin("BTCUSDT", "1h", v1)  # e.g. `cse-models` on another machine, or another replica's admin
    wait_for(lambda: _version_served(client, admin) == v1)
    assert _models(client, admin)["BTCUSDT", "1h"]["pinned"] is True


def test_the_watcher_does_not_retry_a_broken_version_every_tick(publish, client_factory, settings, admin):
    v1 = publish("BTCUSDT")
    client = client_factory(dataclasses.replace(settings, watch_interval_s=0.05))
    publish("BTCUSDT", model_bytes=b"garbage")
    wait_for(lambda: _models(client, admin)["BTCUSDT", "1h"]["last_error"] is not None)
    time.sleep(0.5)  # ~10 more ticks
    text = client.get("/metrics").text
    assert 'cse_model_loads_total{interval="1h",outcome="failed",symbol="BTCUSDT"} 1.0' in text
    assert _version_served(client, admin) == v1


# ----------------------------------------------------------------------------- pins in the store
def test_a_pin_survives_a_restart_and_retention(publish, store, client_factory, tmp_path, admin):
    v1 = publish("BTCUSDT", offset=0.5)
    publish("BTCUSDT", offset=1.0)
    client = client_factory()
    assert client.post("/models/BTCUSDT/1h/pin", json={"version": v1}, headers=admin).status_code == 200
    assert store.pinned("BTCUSDT", "1h") == v1
    for offset in (2.0, 3.0, 4.0):  # the publisher's retention keeps 2: v1 is older than all of them
        version = version_at()
        work = tmp_path / version
        work.mkdir()
        store.publish(
            manifest_for("BTCUSDT", "regression", version),
            {MODEL_FILE: regression_onnx(work / "m.onnx", offset)},
            keep=2,
        )
    assert v1 in store.versions("BTCUSDT", "1h")
    restarted = client_factory()
    assert _version_served(restarted, admin) == v1
    assert _models(restarted, admin)["BTCUSDT", "1h"]["pinned"] is True
    unpinned = restarted.post("/models/BTCUSDT/1h/pin", json={"version": "latest"}, headers=admin).json()
    assert unpinned["pinned"] is False and unpinned["version"] == store.latest("BTCUSDT", "1h")
    assert store.pinned("BTCUSDT", "1h") is None


# ----------------------------------------------------------------------------- version policy
def test_a_request_may_name_a_loaded_version(publish, client_factory, settings, admin):
    v1 = publish("BTCUSDT", offset=0.5)
    client = client_factory(dataclasses.replace(settings, keep_versions=2))
    v2 = publish("BTCUSDT", offset=10.0)
    client.post("/models/reload", headers=admin)
    assert _version_served(client, admin) == v2
    assert _version_served(client, admin, version=v1) == v1
    assert _models(client, admin)["BTCUSDT", "1h"]["loaded_versions"] == [v2, v1]
    v3 = publish("BTCUSDT", offset=20.0)
    client.post("/models/reload", headers=admin)
    response = client.post(
        "/predict", json={"symbol": "BTCUSDT", "klines": make_klines(), "version": v1}, headers=admin
    )
    assert response.status_code == 404
    assert v3 in response.json()["detail"] and v2 in response.json()["detail"]


def test_only_the_serving_version_is_kept_by_default(publish, client_factory, admin):
    v1 = publish("BTCUSDT")
    client = client_factory()
    publish("BTCUSDT", offset=3.0)
    client.post("/models/reload", headers=admin)
    response = client.post(
        "/predict", json={"symbol": "BTCUSDT", "klines": make_klines(), "version": v1}, headers=admin
    )
    assert response.status_code == 404


# ----------------------------------------------------------------------------- fallback, readiness
def test_a_corrupt_latest_at_cold_start_falls_back_to_the_newest_good_version(
    publish, store, client_factory, admin, user
):
    v1 = publish("BTCUSDT", offset=0.5)
    v2 = publish("BTCUSDT", offset=1.0)
    v3 = publish("BTCUSDT", offset=2.0)
    model = store.version_dir("BTCUSDT", "1h", v3) / MODEL_FILE
    model.write_bytes(model.read_bytes()[:-5] + b"xxxxx")
    client = client_factory()
    assert _version_served(client, admin) == v2
    ready = client.get("/readyz")
    assert ready.status_code == 200
    [series] = ready.json()["series"]
    assert (ready.json()["status"], series["state"], series["version"], series["target"]) == (
        "degraded",
        "degraded",
        v2,
        v3,
    )
    one = client.get("/models/BTCUSDT/1h/ready")
    assert one.status_code == 200 and one.json()["state"] == "degraded"
    assert str(store.root) not in ready.text and str(store.root) not in one.text
    assert v1 != v2


def test_a_garbage_latest_pointer_falls_back_too(publish, store, client_factory, admin):
    publish("BTCUSDT")
    v2 = publish("BTCUSDT", offset=1.0)
    (store.series_dir("BTCUSDT", "1h") / LATEST).write_text("not a version\n")
    client = client_factory()
    assert _version_served(client, admin) == v2
    assert client.get("/models/BTCUSDT/1h/ready").json()["state"] == "degraded"


def test_readiness_per_series(publish, client_factory):
    publish("BTCUSDT")
    publish("XRPUSDT", model_bytes=b"garbage")
    client = client_factory()
    assert client.get("/models/BTCUSDT/1h/ready").json()["state"] == "ready"
    broken = client.get("/models/XRPUSDT/1h/ready")
    assert broken.status_code == 503 and broken.json()["state"] == "unavailable"
    assert client.get("/models/DOGEUSDT/1h/ready").status_code == 404
    ready = client.get("/readyz").json()
    assert ready["status"] == "degraded" and [s["symbol"] for s in ready["series"]] == ["XRPUSDT"]


def test_readyz_is_ready_when_every_series_serves_its_target(publish, client_factory):
    publish("BTCUSDT")
    publish("ETHUSDT")
    body = client_factory().get("/readyz").json()
    assert body == {"status": "ready", "models": 2, "series": []}


# ----------------------------------------------------------------------------- what users may see
def test_users_get_a_stable_message_admins_the_raw_error(publish, store, client_factory, admin, user):
    publish("BTCUSDT")
    client = client_factory()
    bad = publish("BTCUSDT", model_bytes=b"\x08\x07 not onnx")
    client.post("/models/reload", headers=admin)
    raw = _models(client, admin)["BTCUSDT", "1h"]["last_error"]["message"]
    assert "onnxruntime cannot load" in raw and str(store.root) in raw
    shown = client.get("/models", headers=user).text
    assert str(store.root) not in shown and "onnxruntime" not in shown
    message = _models(client, user)["BTCUSDT", "1h"]["last_error"]["message"]
    assert bad in message and "admin" in message


# ----------------------------------------------------------------------------- outputs from the manifest
def _with_extra_output(path: Path) -> Path:
    """The regression graph plus an output `spread` = close (a head serving does not know)."""
    model = onnx.load(path)
    model.graph.node.append(helper.make_node("Identity", ["close"], ["spread"]))
    model.graph.output.append(helper.make_tensor_value_info("spread", TensorProto.FLOAT, ["batch", 1]))
    onnx.save(model, path)
    return path


def _publish_with_outputs(store: ModelStore, tmp_path: Path, outputs: list[str], graph: Path) -> str:
    version = version_at()
    manifest = dataclasses.replace(
        manifest_for("BTCUSDT", "regression", version),
        outputs=[TensorSpec(name, "float32", ["batch", 1]) for name in outputs],
    )
    store.publish(manifest, {MODEL_FILE: graph})
    return version


def test_a_new_head_in_the_manifest_needs_no_serving_change(store, client_factory, tmp_path, admin):
    graph = _with_extra_output(regression_onnx(tmp_path / "extra.onnx"))
    version = _publish_with_outputs(store, tmp_path, ["close", "spread"], graph)
    client = client_factory()
    assert _version_served(client, admin) == version


def test_a_graph_lacking_a_listed_output_is_not_served(store, client_factory, tmp_path, admin):
    _publish_with_outputs(store, tmp_path, ["close", "spread"], regression_onnx(tmp_path / "plain.onnx"))
    info = _models(client_factory(), admin)["BTCUSDT", "1h"]
    assert info["version"] is None and "'spread'" in info["last_error"]["message"]


def test_a_manifest_lacking_the_tasks_output_is_not_served(store, client_factory, tmp_path, admin):
    graph = _with_extra_output(regression_onnx(tmp_path / "extra.onnx"))
    _publish_with_outputs(store, tmp_path, ["spread"], graph)
    info = _models(client_factory(), admin)["BTCUSDT", "1h"]
    assert info["version"] is None and "needs output(s) ['close']" in info["last_error"]["message"]


# ----------------------------------------------------------------------------- values the graph cannot take
@pytest.mark.parametrize("price", [1e-300, 1e-39, 3.5e38])
def test_prices_outside_float32_are_422(client, price):
    klines = make_klines()
    klines[5]["low"] = price if price < 1 else klines[5]["low"]
    klines[5]["high"] = price if price > 1 else klines[5]["high"]
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines})
    assert response.status_code == 422, response.text
    assert "klines[5]" in response.json()["detail"] and "float32" in response.json()["detail"]


def test_open_time_off_the_interval_grid_is_422(client):
    klines = make_klines()
    for row in klines:
        row["open_time"] += 60_000  # every candle one minute late: not hourly candles
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines})
    assert response.status_code == 422
    assert "not the start of a 1h candle" in response.json()["detail"]


# ----------------------------------------------------------------------------- disconnects
def test_a_client_that_disconnects_mid_body_is_not_a_server_error(publish, settings, tokens):
    publish("BTCUSDT")
    app = create_app(settings)
    messages = iter(
        [{"type": "http.request", "body": b'{"symbol": "BTC', "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive():
        return next(messages)

    async def send(message):
        pass

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", b"4000"),
            (b"authorization", f"Bearer {tokens['user']}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }

    async def run() -> str:
        async with app.lifespan():  # the real lifespan: tokens, registry
            await app(scope, receive, send)
            return app.state.metrics.render().decode()

    text = asyncio.run(run())
    assert 'status="disconnected"' in text
    assert 'status="500"' not in text
