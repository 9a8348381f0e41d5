"""The compose file's Dagster services as plain processes (no container engine runs here): the webserver
and daemon commands of deploy/compose.yaml, with their environment, the instance the cse-dagster image
carries (deploy/dagster-postgres.yaml) and a real PostgreSQL server in place of the `postgres` service.
The webserver serves the cse code location (the `refresh` job) and the daemon heartbeats into Postgres
(about 15 s: two Dagster processes load the definitions)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from postgres_server import DATABASE, USER, PostgresServer, postgres_for_tests

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
JOBS_QUERY = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name jobs { name } } } } }"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_for_tests() as server:
        yield server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _service_env(service: dict, postgres: PostgresServer, tmp_path: Path) -> dict[str, str]:
    """The service's compose environment, with this machine's addresses for the compose hostnames."""
    env = {name: str(value) for name, value in service["environment"].items()}
    env.update(DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_PORT=str(postgres.port), DAGSTER_PG_DB=DATABASE)
    env.update(DAGSTER_PG_USERNAME=USER, CSE_HOME=str(tmp_path / "cse"), CSE_STORE=str(tmp_path / "store"))
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")  # as the image does
    return {**env, "DAGSTER_HOME": str(home), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}


@contextmanager
def _running(command: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the group this test started: the process and its code servers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_for(check, process: subprocess.Popen[str], what: str, timeout_s: float = 120.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what}: the process exited\n{process.stderr.read()[-3000:]}"
        if result := check():
            return result
        time.sleep(0.5)
    pytest.fail(f"{what}: nothing within {timeout_s:.0f} s")


def _graphql(url: str) -> dict | None:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": JOBS_QUERY}).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError):
        return None


def test_the_compose_webserver_serves_the_cse_code_location(postgres: PostgresServer, tmp_path: Path) -> None:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["dagster-webserver"]
    port = _free_port()
    command = [
        {"0.0.0.0": "127.0.0.1", "3000": str(port)}.get(part, part) for part in service["command"]
    ]  # the compose command on a free local port
    with _running(command, _service_env(service, postgres, tmp_path), ROOT) as webserver:
        answer = _wait_for(lambda: _graphql(f"http://127.0.0.1:{port}"), webserver, "webserver GraphQL")
    (repository,) = answer["data"]["repositoriesOrError"]["nodes"]
    assert {"refresh", "data_refresh"} <= {job["name"] for job in repository["jobs"]}


def test_the_compose_daemon_heartbeats_into_postgres(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["dagster-daemon"]
    env = _service_env(service, postgres, tmp_path)
    for name in ("DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USERNAME"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", env["DAGSTER_PG_PASSWORD"])
    with _running(service["command"], env, ROOT) as daemon, DagsterInstance.get() as instance:
        beats = _wait_for(
            lambda: {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR"} <= set(instance.get_daemon_heartbeats()),
            daemon,
            "daemon heartbeats",
        )
        assert beats
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
