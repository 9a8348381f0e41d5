"""A global model: one ONNX graph published for several symbols is served by ONE onnxruntime session.

Every symbol keeps its own version and manifest in the store, holding a byte-identical copy of the graph
(published here through the store's own API, as a global model passing each symbol's gate would be);
serving shares the session of a graph by the sha256 the manifests list for it, shows that sha256 per
series in GET /models and counts the sessions alive in `cse_serving_ort_sessions`. A graph that no loaded
version runs any more (hot swap, keep-versions eviction) is dropped with its last model."""

from __future__ import annotations

import dataclasses
import re
import threading
import weakref
from pathlib import Path

import httpx
import pytest
from serving_helpers import make_klines, manifest_for, real_server, regression_onnx, version_at, wait_for
from test_serving_int8 import INT8_FILE, INT8_OFFSET, publish_with_variant

from cse_models.store import MODEL_FILE, ModelStore, sha256_file
from cse_serving.model_registry import ModelRegistry
from cse_serving.session_cache import SessionCache
from cse_serving.settings import Settings

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def publish_for_symbols(store: ModelStore, files: dict[str, Path], symbols: tuple[str, ...]) -> dict[str, str]:
    """The same version files (relative name → path) published as a new version of each symbol → versions."""
    versions = {}
    for symbol in symbols:
        versions[symbol] = version_at()
        store.publish(manifest_for(symbol, "regression", versions[symbol]), files)
    return versions


def _models(url: str) -> dict[str, dict]:
    return {m["symbol"]: m for m in httpx.get(f"{url}/models").json()["models"]}


def _sessions(url: str) -> float:
    """The `cse_serving_ort_sessions` gauge, scraped from /metrics."""
    match = re.search(r"^cse_serving_ort_sessions (\S+)$", httpx.get(f"{url}/metrics").text, re.MULTILINE)
    assert match, "no cse_serving_ort_sessions gauge in /metrics"
    return float(match.group(1))


def _closes(url: str, klines: list[dict]) -> dict[str, float]:
    """/predict's close per symbol for the same klines."""
    closes = {}
    for symbol in SYMBOLS:
        response = httpx.post(f"{url}/predict", json={"symbol": symbol, "interval": "1h", "klines": klines})
        assert response.status_code == 200, response.text
        closes[symbol] = response.json()["prediction"]["close"]
    return closes


def test_symbols_on_one_graph_share_one_session_until_they_all_move_off_it(tmp_path: Path, store: ModelStore):
    """A real server with its watcher: three symbols on graph A hold one session; one symbol swapped to
    graph B makes two; once all three run B, A's session is gone."""
    work = tmp_path / "build"
    work.mkdir()
    old, new = regression_onnx(work / "old.onnx", 0.5), regression_onnx(work / "new.onnx", 0.75)
    publish_for_symbols(store, {MODEL_FILE: old}, SYMBOLS)
    env = {
        "CSE_HOME": str(tmp_path / "home"),
        "CSE_STORE": str(store.root),
        "CSE_SERVING_WATCH_SECONDS": "0.2",
        "CSE_SERVING_RATE_LIMIT": "off",
    }
    klines = make_klines()
    last = klines[-1]["close"]
    with real_server(env, "--no-auth") as url:
        assert _closes(url, klines) == pytest.approx(dict.fromkeys(SYMBOLS, last + 0.5), rel=1e-6)
        assert [m["graph_sha256"] for m in _models(url).values()] == [sha256_file(old)] * 3
        assert _sessions(url) == 1

        moved = publish_for_symbols(store, {MODEL_FILE: new}, SYMBOLS[:1])
        wait_for(lambda: _models(url)["BTCUSDT"]["version"] == moved["BTCUSDT"], timeout=15.0)
        assert _sessions(url) == 2
        assert _closes(url, klines) == pytest.approx(
            {"BTCUSDT": last + 0.75, "ETHUSDT": last + 0.5, "SOLUSDT": last + 0.5}
        )
        assert _models(url)["BTCUSDT"]["graph_sha256"] == sha256_file(new)

        moved = publish_for_symbols(store, {MODEL_FILE: new}, SYMBOLS[1:])
        wait_for(lambda: all(_models(url)[symbol]["version"] == moved[symbol] for symbol in SYMBOLS[1:]), timeout=15.0)
        wait_for(lambda: _sessions(url) == 1, timeout=5.0)  # the sync that swapped them may still be returning
        assert [m["graph_sha256"] for m in _models(url).values()] == [sha256_file(new)] * 3
        assert _closes(url, klines) == pytest.approx(dict.fromkeys(SYMBOLS, last + 0.75), rel=1e-6)


def test_series_on_one_graph_hold_the_very_same_session_objects(store: ModelStore, settings: Settings, tmp_path):
    """An ensemble's members are shared like its graph: three symbols, three sessions (graph, two members)."""
    work = tmp_path / "build"
    work.mkdir()
    files = {
        MODEL_FILE: regression_onnx(work / "model.onnx", 0.5),
        "members/lstm.onnx": regression_onnx(work / "lstm.onnx", 1.5),
        "members/cnn.onnx": regression_onnx(work / "cnn.onnx", -2.0),
    }
    publish_for_symbols(store, files, SYMBOLS)
    registry = ModelRegistry(store, settings)
    registry.sync()
    btc, eth, sol = (registry.get(symbol, "1h") for symbol in SYMBOLS)
    assert btc.session is eth.session is sol.session
    assert sorted(btc.members) == ["cnn", "lstm"]
    assert all(model.members[name] is btc.members[name] for model in (eth, sol) for name in btc.members)
    assert len(registry.sessions) == 3


def test_a_graph_is_dropped_when_the_last_version_running_it_is_evicted(store: ModelStore, settings, tmp_path):
    """With two versions kept, graph A outlives its first swap (its version may still be asked for by
    `version`) and goes with the second."""
    work = tmp_path / "build"
    work.mkdir()
    graphs = [regression_onnx(work / f"graph{i}.onnx", offset) for i, offset in enumerate((0.5, 1.0, 1.5))]
    registry = ModelRegistry(store, dataclasses.replace(settings, keep_versions=2))
    publish_for_symbols(store, {MODEL_FILE: graphs[0]}, SYMBOLS)
    registry.sync()
    first = weakref.ref(registry.get("BTCUSDT", "1h").session)
    publish_for_symbols(store, {MODEL_FILE: graphs[1]}, SYMBOLS)
    registry.sync()
    assert first() is not None and len(registry.sessions) == 2
    publish_for_symbols(store, {MODEL_FILE: graphs[2]}, SYMBOLS)
    registry.sync()
    assert first() is None and len(registry.sessions) == 2
    loaded = {model.graph_sha256 for state in registry.states().values() for model in state.loaded}
    assert loaded == {sha256_file(graphs[1]), sha256_file(graphs[2])}


def test_an_int8_variant_is_a_graph_of_its_own(store: ModelStore, settings: Settings, tmp_path):
    """Int8 served: two symbols whose versions carry the variant share its session; a third symbol with
    the same model.onnx but no variant serves fp32 from another, so two sessions in all. (The fp32 session
    that ran the variant's probe at load is not kept: nothing serves it.)"""
    work = tmp_path / "build"
    work.mkdir()
    fp32, int8 = regression_onnx(work / "fp32.onnx", 0.5), regression_onnx(work / "int8.onnx", INT8_OFFSET)
    for symbol in SYMBOLS[:2]:
        publish_with_variant(store, work / "v", fp32_graph=fp32, int8_graph=int8, symbol=symbol)
    publish_for_symbols(store, {MODEL_FILE: fp32}, SYMBOLS[2:])
    registry = ModelRegistry(store, dataclasses.replace(settings, int8=True))
    registry.sync()
    btc, eth, sol = (registry.get(symbol, "1h") for symbol in SYMBOLS)
    assert (btc.encoding, eth.encoding, sol.encoding) == ("int8", "int8", "fp32")
    assert btc.session is eth.session and btc.session is not sol.session
    assert btc.graph_sha256 == eth.graph_sha256 == btc.manifest.files[INT8_FILE] == sha256_file(int8)
    assert sol.graph_sha256 == sha256_file(fp32)
    assert len(registry.sessions) == 2


def test_concurrent_loads_of_one_graph_build_it_once(settings: Settings, tmp_path: Path):
    """The watcher's thread and an admin reload may ask for the same graph at once: one session results."""
    graph = regression_onnx(tmp_path / "model.onnx")
    cache = SessionCache(settings)
    start = threading.Barrier(8)
    sessions = []

    def load() -> None:
        start.wait()
        sessions.append(cache.session(sha256_file(graph), graph))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sessions) == 8 and all(session is sessions[0] for session in sessions)
    assert len(cache) == 1


def test_models_names_a_global_models_learners_and_whether_the_symbol_is_zero_shot(store: ModelStore, tmp_path):
    """GET /models shows `training.global` of each manifest: the learners, the cut, zero_shot; null for a
    symbol's own model."""
    graph = regression_onnx(tmp_path / "model.onnx")
    facts = {"trained_on": ["BTCUSDT", "ETHUSDT"], "learned_before": "2021-10-12T09:00:00+00:00"}
    for symbol, zero_shot in (("ETHUSDT", False), ("SOLUSDT", True)):
        manifest = manifest_for(symbol, "regression", version_at())
        manifest = dataclasses.replace(manifest, training={"global": {**facts, "zero_shot": zero_shot}})
        store.publish(manifest, {MODEL_FILE: graph})
    store.publish(manifest_for("BTCUSDT", "regression", version_at()), {MODEL_FILE: graph})
    env = {"CSE_HOME": str(tmp_path / "home"), "CSE_STORE": str(store.root), "CSE_SERVING_RATE_LIMIT": "off"}
    with real_server(env, "--no-auth") as url:
        models = _models(url)
    assert models["BTCUSDT"]["global_model"] is None
    for symbol, zero_shot in (("ETHUSDT", False), ("SOLUSDT", True)):
        shown = models[symbol]["global_model"]
        assert shown["trained_on"] == ["BTCUSDT", "ETHUSDT"] and shown["zero_shot"] is zero_shot
        assert shown["learned_before"] == facts["learned_before"] and shown["held_out_from"] is None
