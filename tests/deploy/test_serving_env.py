"""What the serving image holds, without a container engine: a fresh virtual environment with exactly
deploy/requirements-serving.txt (installed by pip from the configured index, as the Dockerfile does) and
copies of cse_models/ and cse_serving/ only. The service starts there, answers /healthz and serves a
/predict from a published model, and the environment holds no jax, flax or dagster. `slow`: it installs
about 60 packages (CSE_SLOW=1)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cse_models.store import ModelStore

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "deploy" / "requirements-serving.txt"


def _serving_helpers():
    """tests/serving/serving_helpers.py by path: its model and kline builders."""
    spec = importlib.util.spec_from_file_location("deploy_serving_helpers", ROOT / "tests/serving/serving_helpers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _get(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except urllib.error.URLError:
        return 0, b""


@pytest.mark.slow
def test_the_serving_image_contents_serve_a_prediction(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--no-cache-dir", "-q", "-r", str(REQUIREMENTS)]
    subprocess.run(install, check=True, timeout=900, capture_output=True)
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], check=True, capture_output=True)
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert not {name for name in installed if name.startswith(("jax", "flax", "optax", "orbax", "dagster"))}

    app = tmp_path / "app"
    for package in ("cse_models", "cse_serving"):
        shutil.copytree(ROOT / package, app / package, ignore=shutil.ignore_patterns("__pycache__"))

    helpers = _serving_helpers()
    store = ModelStore(tmp_path / "store")
    version = helpers.version_at()
    model = helpers.forecast_onnx(tmp_path / "model.onnx")
    store.publish(helpers.forecast_manifest("BTCUSDT", version, heads=helpers.DEFAULT_HEADS), {"model.onnx": model})
    body = json.dumps({"symbol": "BTCUSDT", "interval": "1h", "klines": helpers.make_klines(300)}).encode()

    port = helpers.free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(app),
        "CSE_HOME": str(tmp_path / "home"),
        "CSE_STORE": str(tmp_path / "store"),
        "CSE_SERVING_AUTH": "0",
        "CSE_SERVING_HOST": "127.0.0.1",
        "CSE_SERVING_PORT": str(port),
    }
    server = subprocess.Popen(
        [str(python), "-m", "cse_serving", "serve"], cwd=app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _get(f"{url}/healthz")[0] != 200:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the service did not answer /healthz"
            time.sleep(0.2)
        status, answer = _get(f"{url}/predict", body)
        assert status == 200, answer
        assert json.loads(answer)["model_version"] == version
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
