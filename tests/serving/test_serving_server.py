"""The real thing: the `cse-serving` CLI creates a token, starts uvicorn, answers over real HTTP, stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serving_helpers import make_klines, real_server


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cse_serving", *args], env=env, capture_output=True, text=True, timeout=60
    )


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

    with real_server(env) as url:
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
