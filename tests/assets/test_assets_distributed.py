"""`TrainingResource` joins a JAX cluster from its config (`jax.distributed.initialize` through
`cse_models.training.sharding.initialize_distributed`), and does nothing of the kind by default.

Real on CPU, in fresh interpreters (a process joins once): one process with a local coordinator, a Dagster
run whose resource joins before its asset computes, and two processes that find each other through the
coordinator and form one mesh. Not tested here: training across hosts (that needs a cluster of nodes)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import build_init_resource_context

from cse_assets.resources import TrainingResource
from cse_models.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

JOIN = """
import json, sys
import jax
from dagster import build_init_resource_context
from cse_assets.resources import TrainingResource
from cse_models.training.sharding import data_parallel

config = json.loads(sys.argv[1])
resource = TrainingResource(compilation_cache=False, **config)
for _ in range(2):  # a second run in the same process must not join again
    resource.setup_for_execution(build_init_resource_context())
print(json.dumps({
    "initialized": jax.distributed.is_initialized(),
    "process_index": jax.process_index(),
    "process_count": jax.process_count(),
    "device_count": jax.device_count(),
    "local_device_count": jax.local_device_count(),
    "mesh_devices": data_parallel().device_count,
}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(config: dict, tmp_path: Path, script: str = JOIN) -> subprocess.Popen[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "CSE_HOME": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _result(process: subprocess.Popen[str]) -> dict:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_by_default_training_joins_no_cluster(tmp_path: Path) -> None:
    result = _result(_start({}, tmp_path))
    assert result["initialized"] is False
    assert result["process_count"] == 1


def test_one_process_joins_through_a_local_coordinator(tmp_path: Path) -> None:
    config = {"coordinator_address": f"127.0.0.1:{_free_port()}", "num_processes": 1, "process_id": 0}
    result = _result(_start(config, tmp_path))
    assert result["initialized"] is True
    assert (result["process_index"], result["process_count"]) == (0, 1)


def test_two_processes_form_one_cluster_and_one_mesh(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    processes = []
    for rank in (0, 1):
        (tmp_path / str(rank)).mkdir()
        config = {"coordinator_address": address, "num_processes": 2, "process_id": rank}
        processes.append(_start(config, tmp_path / str(rank)))
    results = [_result(p) for p in processes]
    assert [r["process_index"] for r in results] == [0, 1]
    for result in results:
        assert result["process_count"] == 2
        assert result["device_count"] == 2 * result["local_device_count"]
        assert result["mesh_devices"] == result["device_count"]  # the data mesh spans both processes


MATERIALIZE = """
import json, sys
import jax
from dagster import asset, materialize
from cse_assets.resources import TrainingResource

@asset
def cluster(training: TrainingResource) -> dict:
    return {"initialized": jax.distributed.is_initialized(), "process_count": jax.process_count()}

config = json.loads(sys.argv[1])
result = materialize([cluster], resources={"training": TrainingResource(compilation_cache=False, **config)})
print(json.dumps(result.output_for_node("cluster")))
"""


def test_a_dagster_run_joins_the_cluster_before_the_asset_computes(tmp_path: Path) -> None:
    config = {"coordinator_address": f"127.0.0.1:{_free_port()}", "num_processes": 1, "process_id": 0}
    process = _start(config, tmp_path, MATERIALIZE)
    assert _result(process) == {"initialized": True, "process_count": 1}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"num_processes": 2}, "needs num_processes and process_id"),
        ({"num_processes": 2, "process_id": 2}, r"process_id must be in \[0, num_processes = 2\)"),
    ],
)
def test_an_incomplete_cluster_config_fails_before_jax_starts(config: dict, message: str) -> None:
    resource = TrainingResource(compilation_cache=False, coordinator_address="127.0.0.1:1", **config)
    with pytest.raises(ConfigError, match=message):
        resource.setup_for_execution(build_init_resource_context())
