"""What the serving image holds, without a container engine: a fresh virtual environment with exactly
deploy/requirements-serving.txt (installed by pip from the configured index, as the Dockerfile does) and
copies of cse_models/ and cse_serving/ only. The service starts there, answers /healthz and serves a
/predict from a published model — in a directory and on S3 (moto's server, as compose's MinIO) — and the
environment holds no jax, flax or dagster. `slow` (CSE_SLOW=1): it installs about 60 packages."""

from __future__ import annotations

import contextlib
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
from moto_s3 import running_moto_s3
from serving_helpers_by_path import serving_helpers

from cse_models.store import ModelStore, open_store

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "deploy" / "requirements-serving.txt"


def _get(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except urllib.error.URLError:
        return 0, b""


@pytest.fixture(scope="module")
def serving_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(python of a fresh venv holding exactly the serving list, directory with cse_models/ and cse_serving/)."""
    root = tmp_path_factory.mktemp("serving_image")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--no-cache-dir", "-q", "-r", str(REQUIREMENTS)]
    subprocess.run(install, check=True, timeout=900, capture_output=True)
    app = root / "app"
    for package in ("cse_models", "cse_serving"):
        shutil.copytree(ROOT / package, app / package, ignore=shutil.ignore_patterns("__pycache__"))
    return python, app


@pytest.mark.slow
def test_the_serving_venv_holds_no_training_or_dagster_package(serving_env: tuple[Path, Path]) -> None:
    python, _ = serving_env
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], check=True, capture_output=True)
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert {"litestar", "onnxruntime", "s3fs"} <= installed
    assert not {name for name in installed if name.startswith(("jax", "flax", "optax", "orbax", "dagster"))}


@pytest.mark.slow
@pytest.mark.parametrize("store_kind", ["directory", "s3"])
def test_the_serving_image_contents_serve_a_prediction(
    serving_env: tuple[Path, Path], store_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python, app = serving_env
    with contextlib.ExitStack() as stack:
        store_env = {"CSE_STORE": str(tmp_path / "store")}
        if store_kind == "s3":  # as compose's MinIO: CSE_STORE=s3://..., endpoint and AWS_* credentials
            s3 = stack.enter_context(running_moto_s3())
            store_env = {"CSE_STORE": s3.url("store"), **s3.env()}
        for name, value in store_env.items():
            monkeypatch.setenv(name, value)
        version = _publish(open_store(store_env["CSE_STORE"]), tmp_path)
        answer = _predict(python, app, {**store_env, "CSE_HOME": str(tmp_path / "home")})
    assert answer["model_version"] == version


def _publish(store: ModelStore, tmp_path: Path) -> str:
    helpers = serving_helpers()
    version = helpers.version_at()
    model = helpers.forecast_onnx(tmp_path / "model.onnx")
    store.publish(helpers.forecast_manifest("BTCUSDT", version, heads=helpers.DEFAULT_HEADS), {"model.onnx": model})
    return version


def _predict(python: Path, app: Path, env: dict[str, str]) -> dict:
    helpers = serving_helpers()
    body = json.dumps({"symbol": "BTCUSDT", "interval": "1h", "klines": helpers.make_klines(300)}).encode()
    port = helpers.free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(app),
        "CSE_SERVING_AUTH": "0",
        "CSE_SERVING_HOST": "127.0.0.1",
        "CSE_SERVING_PORT": str(port),
        **env,
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
        return json.loads(answer)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
