"""Helpers and fixtures for the serving tests: tiny real ONNX models in a real store, klines, tokens, clients.

A module of its own (not conftest.py) so tests import helpers by a name no other test folder shares;
`conftest.py` re-exports the fixtures.

The regression model answers `close = last row's close feature + 0.5`, the classification model
`softmax([-cc, 0, cc])` of the last row's close_change `cc`, and the forecast model (feature set
"stationary", inputs features and last_close) `close = last_close · e^drift`, `return = drift`,
`lower/upper = last_close · e^∓0.02`, `volatility = the last row's rv_24`, `probabilities =
softmax(FORECAST_LOGITS)`, so every expected answer is exact arithmetic.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from litestar.testing import TestClient
from onnx import TensorProto, helper, numpy_helper

from cse_models.features.sets import get_feature_set
from cse_models.heads.layout import FORECAST_OUTPUTS, HEAD_OUTPUTS, HEADS
from cse_models.store import HeadVerdict, Manifest, ModelStore, TensorSpec, new_version, open_store
from cse_serving.app import create_app
from cse_serving.auth import TokenStore
from cse_serving.settings import Settings

SEQ_LEN = 24
MUR9 = list(get_feature_set("mur9").feature_names)
N_FEATURES = len(MUR9)
CLOSE = MUR9.index("close")
CLOSE_CHANGE = MUR9.index("close_change")
START_MS = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)
HOUR_MS = 3_600_000
CLASSES = ["sell", "hold", "buy"]
STATIONARY = get_feature_set("stationary")
FORECAST_FEATURES = list(STATIONARY.feature_names)
FORECAST_MIN_KLINES = SEQ_LEN + STATIONARY.warmup
RV_24 = FORECAST_FEATURES.index("rv_24")
FORECAST_DRIFT = 0.01
FORECAST_HALF_WIDTH = 0.02
FORECAST_LOGITS = [-0.5, 0.0, 1.0]
HOLD_BAND_SIGMAS = 0.5
DEFAULT_HEADS = {"price": True, "interval": True, "volatility": True, "direction": False}


def _last_feature() -> list[onnx.NodeProto]:
    """features[:, -1, column] as [batch, 1] (the column is set by `_slice_inits`)."""
    return [
        helper.make_node("Slice", ["features", "starts", "ends", "axes"], ["picked"]),
        helper.make_node("Squeeze", ["picked", "squeeze_axes"], ["last"]),
    ]


def _slice_inits(column: int) -> list[onnx.TensorProto]:
    return [
        numpy_helper.from_array(np.array([-1, column], dtype=np.int64), "starts"),
        numpy_helper.from_array(np.array([np.iinfo(np.int64).max, column + 1], dtype=np.int64), "ends"),
        numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "squeeze_axes"),
    ]


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _features_input() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", SEQ_LEN, N_FEATURES])


def regression_onnx(path: Path, offset: float = 0.5) -> Path:
    nodes = [*_last_feature(), helper.make_node("Add", ["last", "offset"], ["close"])]
    inits = [*_slice_inits(CLOSE), numpy_helper.from_array(np.array([offset], dtype=np.float32), "offset")]
    output = helper.make_tensor_value_info("close", TensorProto.FLOAT, ["batch", 1])
    return _save(helper.make_graph(nodes, "regression", [_features_input()], [output], inits), path)


def classification_onnx(path: Path) -> Path:
    nodes = [
        *_last_feature(),
        helper.make_node("MatMul", ["last", "weights"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    inits = [
        *_slice_inits(CLOSE_CHANGE),
        numpy_helper.from_array(np.array([[-1.0, 0.0, 1.0]], dtype=np.float32), "weights"),
    ]
    output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(CLASSES)])
    return _save(helper.make_graph(nodes, "classification", [_features_input()], [output], inits), path)


def forecast_onnx(path: Path, drift: float = FORECAST_DRIFT) -> Path:
    """The forecast contract's graph: inputs features `[batch, SEQ_LEN, 14]` and last_close `[batch, 1]`."""

    def const(name: str, value: float | list[float]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(value, dtype=np.float32).reshape(1, -1), name)

    nodes = [
        helper.make_node("Shape", ["last_close"], ["batch_shape"]),
        helper.make_node("Mul", ["last_close", "up"], ["close"]),
        helper.make_node("Expand", ["drift", "batch_shape"], ["return"]),
        helper.make_node("Mul", ["last_close", "low_factor"], ["lower"]),
        helper.make_node("Mul", ["last_close", "high_factor"], ["upper"]),
        *_last_feature(),
        helper.make_node("Identity", ["last"], ["volatility"]),
        helper.make_node("Expand", ["logits", "batch_shape"], ["batch_logits"]),
        helper.make_node("Softmax", ["batch_logits"], ["probabilities"], axis=-1),
    ]
    inits = [
        *_slice_inits(RV_24),
        const("up", float(np.exp(drift))),
        const("drift", drift),
        const("low_factor", float(np.exp(-FORECAST_HALF_WIDTH))),
        const("high_factor", float(np.exp(FORECAST_HALF_WIDTH))),
        const("logits", FORECAST_LOGITS),
    ]
    inputs = [
        helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", SEQ_LEN, len(FORECAST_FEATURES)]),
        helper.make_tensor_value_info("last_close", TensorProto.FLOAT, ["batch", 1]),
    ]
    outputs = [
        helper.make_tensor_value_info(
            name, TensorProto.FLOAT, ["batch", len(CLASSES) if name == "probabilities" else 1]
        )
        for name in FORECAST_OUTPUTS
    ]
    return _save(helper.make_graph(nodes, "forecast", inputs, outputs, inits), path)


def head_verdicts(publish: dict[str, bool]) -> list[HeadVerdict]:
    """One verdict per head; a withheld head's reason names it (`"<head> withheld: ..."`)."""
    return [
        HeadVerdict(
            name=head,
            outputs=list(HEAD_OUTPUTS[head]),
            reference=f"{head}_baseline",
            skill=0.05 * (i + 1),
            p_value=0.01 if publish[head] else 0.4,
            publish=publish[head],
            passed=publish[head],
            forced=False,
            reason="passed the gate" if publish[head] else f"{head} withheld: skill not significant (p 0.4)",
        )
        for i, head in enumerate(HEADS)
        if head in publish
    ]


def forecast_manifest(
    symbol: str, version: str, *, heads: dict[str, bool], interval: str = "1h", level: float | None = 0.9
) -> Manifest:
    """A forecast manifest; `level` None leaves the calibration record out (serving's default applies)."""
    calibration = {} if level is None else {"calibration": {"interval_level": level, "interval_scale": 1.64}}
    return Manifest(
        symbol=symbol,
        interval=interval,
        version=version,
        created_at=datetime.now(UTC).isoformat(),
        task="forecast",
        feature_set="stationary",
        feature_names=FORECAST_FEATURES,
        seq_len=SEQ_LEN,
        horizon=1,
        warmup=STATIONARY.warmup,
        inputs=[
            TensorSpec("features", "float32", ["batch", SEQ_LEN, len(FORECAST_FEATURES)]),
            TensorSpec("last_close", "float32", ["batch", 1]),
        ],
        outputs=[
            TensorSpec(name, "float32", ["batch", len(CLASSES) if name == "probabilities" else 1])
            for name in FORECAST_OUTPUTS
        ],
        class_names=CLASSES,
        heads=head_verdicts(heads),
        metrics={"validation": {"mae": 1.0}, **calibration},
        training={"data": {"hold_band_sigmas": HOLD_BAND_SIGMAS}},
    )


def expected_probabilities(close_change: float) -> np.ndarray:
    logits = np.array([-close_change, 0.0, close_change], dtype=np.float32)
    e = np.exp(logits - logits.max())
    return e / e.sum()


_counter = iter(range(1, 10_000))


def version_at(second: int | None = None) -> str:
    """Store versions that sort in publication order (new_version alone ties within one second)."""
    n = next(_counter) if second is None else second
    return new_version(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=n))


def manifest_for(symbol: str, task: str, version: str, *, interval: str = "1h") -> Manifest:
    output = (
        TensorSpec("close", "float32", ["batch", 1])
        if task == "regression"
        else TensorSpec("probabilities", "float32", ["batch", len(CLASSES)])
    )
    return Manifest(
        symbol=symbol,
        interval=interval,
        version=version,
        created_at=datetime.now(UTC).isoformat(),
        task=task,
        feature_set="mur9",
        feature_names=MUR9,
        seq_len=SEQ_LEN,
        horizon=1,
        warmup=0,
        inputs=[TensorSpec("features", "float32", ["batch", SEQ_LEN, N_FEATURES])],
        outputs=[output],
        class_names=CLASSES if task == "classification" else [],
        metrics={"validation": {"mae": 1.25}, "skill": 0.1},
    )


Publish = Callable[..., str]


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return open_store(tmp_path / "store")


@pytest.fixture
def publish(store: ModelStore, tmp_path: Path) -> Publish:
    """publish(symbol, task="regression", offset=0.5, model_bytes=None, members=None, heads=None,
    level=0.9) → version. A forecast model's `members` map name → drift, a regression's name → offset;
    `heads` (forecast) maps head → publish verdict (default `DEFAULT_HEADS`)."""

    def _publish(
        symbol: str = "BTCUSDT",
        task: str = "regression",
        *,
        offset: float = 0.5,
        model_bytes: bytes | None = None,
        members: dict[str, float] | None = None,
        interval: str = "1h",
        heads: dict[str, bool] | None = None,
        level: float | None = 0.9,
    ) -> str:
        version = version_at()
        work = tmp_path / "build" / version
        work.mkdir(parents=True)
        model = work / "model.onnx"
        build = forecast_onnx if task == "forecast" else regression_onnx
        if model_bytes is not None:
            model.write_bytes(model_bytes)
        elif task == "forecast":
            forecast_onnx(model)
        elif task == "regression":
            regression_onnx(model, offset)
        else:
            classification_onnx(model)
        files = {"model.onnx": model}
        for name, value in (members or {}).items():
            files[f"members/{name}.onnx"] = build(work / f"{name}.onnx", value)
        manifest = (
            forecast_manifest(symbol, version, heads=heads or DEFAULT_HEADS, interval=interval, level=level)
            if task == "forecast"
            else manifest_for(symbol, task, version, interval=interval)
        )
        store.publish(manifest, files)
        return version

    return _publish


def make_klines(n: int = SEQ_LEN, *, seed: int = 0, start_ms: int = START_MS, alias: bool = False) -> list[dict]:
    """`n` valid hourly klines as JSON-ready dicts (Binance field names; seed names when `alias`): a
    random walk from 100 with 1 % hourly log returns, high/low 0.2 % beyond the body, volume > 0."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opn = np.concatenate([[100.0], close[:-1]])
    rows = []
    for i in range(n):
        high = max(opn[i], close[i]) * 1.002
        low = min(opn[i], close[i]) * 0.998
        row = {
            "open": float(opn[i]),
            "high": float(high),
            "low": float(low),
            "close": float(close[i]),
            "volume": float(10 + i),
        }
        if alias:
            row |= {
                "timestamp": start_ms + i * HOUR_MS,
                "close_time": start_ms + (i + 1) * HOUR_MS - 1,
                "quote_av": 1.0,
                "trades": 5,
                "tb_base_av": 1.0,
                "tb_quote_av": 1.0,
                "ignore": "0",
            }
        else:
            row["open_time"] = start_ms + i * HOUR_MS
        rows.append(row)
    return rows


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No store watcher (tests that need it turn it on): what serves changes only when a test says so."""
    return Settings(
        store_root=tmp_path / "store",
        db_path=tmp_path / "serving.db",
        scorecard_path=tmp_path / "scorecard.db",
        watch_interval_s=0,
    )


@pytest.fixture
def tokens(settings: Settings) -> dict[str, str]:
    """A user and an admin token, created before the app starts (as the CLI would)."""
    store = TokenStore(settings.db_path)
    try:
        return {"user": store.create("alice"), "admin": store.create("root", "admin")}
    finally:
        store.close()


def assert_error(response, status: int, *fragments: str) -> dict:
    """The JSON error body `{status_code, detail}` with `status`, whose detail holds every fragment."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status_code", "detail"}
    assert body["status_code"] == status
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]
    return body


def post_raw(client, path: str, body: bytes):
    """POST bytes as they are (not re-encoded by the client) with a JSON content type."""
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client_factory(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Start apps lazily (after publishing) and close them all at the end."""
    opened: list[TestClient] = []

    def _open(app_settings: Settings | None = None) -> TestClient:
        client = TestClient(create_app(app_settings or settings))
        client.__enter__()
        opened.append(client)
        return client

    yield _open
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def client(publish, client_factory, tokens):
    """A user-token client of an app serving BTCUSDT (regression) and ETHUSDT (classification).
    Modules that need another setup define their own `client`."""
    publish("BTCUSDT", "regression")
    publish("ETHUSDT", "classification")
    client = client_factory()
    client.headers.update(bearer(tokens["user"]))
    return client


REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}: {process.stderr.read() if process.stderr else ''}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("server did not become healthy")


@contextlib.contextmanager
def real_server(env: dict[str, str], *args: str) -> Iterator[str]:
    """`cse-serving serve` in a subprocess on a free 127.0.0.1 port → its URL; SIGTERM (then SIGKILL) at the
    end. `env` is added to this process's environment; `args` are extra CLI flags."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "cse_serving", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_healthy(url, process)
        yield url
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `predicate` every 50 ms until it holds; the test fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"not true within {timeout} s")
