"""The real thing: the `cse-serving` CLI creates a token, starts uvicorn, answers over real HTTP, stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_helpers import make_klines


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cse_serving", *args], env=env, capture_output=True, text=True, timeout=60
    )


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}: {process.stderr.read()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("server did not become healthy")


def test_cli_serves_predictions_over_real_http(tmp_path: Path, publish, store):
    version = publish("BTCUSDT")
    env = {
        **os.environ,
        "CSE_HOME": str(tmp_path / "home"),
        "CSE_STORE": str(store.root),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    created = _cli("token", "create", "--name", "e2e", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert (tmp_path / "home" / "serving.db").is_file()
    listed = _cli("token", "list", env=env)
    assert listed.stdout.startswith("e2e\tuser\t") and token not in listed.stdout

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "cse_serving", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_healthy(url, process)
        assert httpx.get(f"{url}/readyz").status_code == 200
        klines = make_klines()
        body = {"symbol": "BTCUSDT", "interval": "1h", "klines": klines}
        assert httpx.post(f"{url}/predict", json=body).status_code == 401
        response = httpx.post(f"{url}/predict", json=body, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == version
        assert response.json()["prediction"]["close"] == pytest.approx(klines[-1]["close"] + 0.5, rel=1e-6)
        assert _cli("token", "revoke", "e2e", env=env).returncode == 0
        assert httpx.post(f"{url}/predict", json=body, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    assert process.returncode is not None
