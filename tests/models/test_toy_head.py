"""Adding a head is one file and one registry line: a toy head (a copy of volatility named `toy_range`,
`toy_head.py`), registered in this test only, goes through walk-forward, training, export, publication to
a local store and `/predict` on a real server, with no other change anywhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from toy_head import TOY

from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.prepared import PreparedSeries
from cse_models.evaluation import WalkForwardConfig, evaluate_walk_forward, head_decisions
from cse_models.heads.layout import HEADS, OUTPUT_NAMES
from cse_models.heads.registry import HEAD_SPECS, registered_head
from cse_models.members import member_kind
from cse_models.publication.publish import PublishRequest, head_verdicts, publish
from cse_models.specs import ModelSpec
from cse_models.store import Member, open_store
from cse_models.training.config import budget
from cse_serving.auth import TokenStore

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parents[1]
SPEC = ModelSpec("lstm", "lstm_regressor", "demo")
# The server process registers the toy head before it starts, as the test process does.
SERVE = (
    "import sys; from toy_head import TOY; from cse_models.heads.registry import HEAD_SPECS; HEAD_SPECS.add(TOY); "
    "from cse_serving.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_the_toy_head_is_gone_outside_the_block():
    with registered_head(TOY):
        assert OUTPUT_NAMES["forecast"][-1] == "toy_range"
    assert "toy_range" not in HEAD_SPECS and "toy_range" not in OUTPUT_NAMES["forecast"]
    assert HEADS == ("price", "interval", "volatility", "direction")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _server(env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1", "--port", str(port)]
    path = os.pathsep.join([str(ROOT), str(TESTS)])
    process = subprocess.Popen(
        command, env={**os.environ, "PYTHONPATH": path, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def toy_published(forecast_data, tmp_path_factory):
    """Walk-forward, train, export and publish with the toy head registered → (store root, manifest,
    boards, the exported graph's toy and volatility outputs on the test windows)."""
    import onnxruntime as ort

    data_cfg, scaler, datasets, features = forecast_data
    root = tmp_path_factory.mktemp("toy")
    with registered_head(TOY):
        boards = evaluate_walk_forward(features, data_cfg, WalkForwardConfig(n_folds=2), models=[SPEC], budget="tiny")
        kind = member_kind(SPEC.architecture)
        trained = kind.train(SPEC, PreparedSeries(datasets, data_cfg, scaler), budget("tiny"), root / "model")
        inputs = graph_inputs(datasets["test"], data_cfg)
        exported = kind.export(trained, scaler, data_cfg, root / "model.onnx", inputs, model_name=SPEC.name)
        heads = head_verdicts(boards, SPEC.name, head_decisions(boards, SPEC.name, force=True))
        manifest = publish(
            open_store(root / "store"),
            PublishRequest(
                symbol="ETHUSDT",
                interval="1h",
                data=data_cfg,
                scaler=scaler,
                onnx_path=Path(exported.path),
                members=(Member(SPEC.name, SPEC.architecture, 1.0),),
                metrics={**trained.metrics, "calibration": trained.calibration},
                training={"budget": "tiny", "spec": SPEC.as_dict(), "model": trained.config},
                heads=heads,
            ),
            workdir=root / "publish",
        )
    session = ort.InferenceSession(exported.path, providers=["CPUExecutionProvider"])
    toy, volatility = session.run(["toy_range", "volatility"], {k: v[:8] for k, v in inputs.items()})
    return root, manifest, boards, toy, volatility


def test_the_toy_head_is_scored_walk_forward_like_the_head_it_copies(toy_published):
    _, _, boards, _, _ = toy_published
    assert boards.heads == (*HEADS, "toy_range")
    toy, volatility = boards["toy_range"], boards["volatility"]
    assert toy.reference == "trailing_mean" and toy.row("trailing_mean").skill == 0.0
    assert np.isfinite(toy.row("lstm").skill)
    assert toy.row("lstm").metrics == volatility.row("lstm").metrics  # same forecasts, same truth, same rule


def test_the_toy_head_is_exported_and_published(toy_published):
    _, manifest, _, toy, volatility = toy_published
    np.testing.assert_array_equal(toy, volatility)
    assert [h.name for h in manifest.heads] == [*HEADS, "toy_range"]
    assert manifest.head("toy_range").outputs == ["toy_range"] and manifest.head("toy_range").publish
    assert "toy_range" in [o.name for o in manifest.outputs]


def test_predict_on_a_real_server_answers_the_toy_head(toy_published):
    root, manifest, _, _, _ = toy_published
    tokens = TokenStore(root / "home" / "serving.db")
    token = tokens.create("alice")
    tokens.close()
    env = {
        "CSE_HOME": str(root / "home"),
        "CSE_STORE": str(root / "store"),
        "CSE_SERVING_SOURCE": "sample",
        "CSE_SERVING_WATCH_SECONDS": "0",
    }
    with _server(env) as url:
        response = httpx.post(
            f"{url}/predict",
            json={"symbol": "ETHUSDT", "interval": "1h"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == manifest.version
    card = body["forecast"]
    assert card["other"]["toy_range"] == [pytest.approx(card["volatility"], rel=1e-6)]


def test_a_classical_member_exports_the_toy_head(forecast_data, tmp_path):
    """The trees predict the network's raw outputs; the card, and so every registered head, follows."""
    import onnxruntime as ort

    data_cfg, scaler, datasets, _ = forecast_data
    kind, spec = member_kind("lightgbm"), ModelSpec("lightgbm", "lightgbm", "demo")
    with registered_head(TOY):
        trained = kind.train(spec, PreparedSeries(datasets, data_cfg, scaler), budget("tiny"), tmp_path / "model")
        inputs = graph_inputs(datasets["test"], data_cfg)
        exported = kind.export(trained, scaler, data_cfg, tmp_path / "model.onnx", inputs, model_name=spec.name)
    session = ort.InferenceSession(exported.path, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == [*OUTPUT_NAMES["forecast"], "toy_range"]
    toy, volatility = session.run(["toy_range", "volatility"], {k: v[:8] for k, v in inputs.items()})
    np.testing.assert_array_equal(toy, volatility)
