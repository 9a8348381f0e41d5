"""The Kubernetes setup, checked by Dagster itself without a cluster: deploy/k8s/dagster.yaml against the
instance schema, its storage against dagster-postgres's schema and its run launcher against
`K8sRunLauncher.config_type()` (a misspelt key must fail: the positive control), the launcher built from
that config as the daemon builds it, and the definitions with `CSE_EXECUTOR=k8s` (still without JAX)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInvalidConfigError
from dagster._config import process_config, validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s import K8sRunLauncher
from dagster_postgres import DagsterPostgresStorage

from cse_assets.definitions import build_definitions
from cse_assets.settings import CseSettings
from cse_models.errors import UnknownNameError

ROOT = Path(__file__).resolve().parents[2]
K8S_INSTANCE = ROOT / "deploy" / "k8s" / "dagster.yaml"
POSTGRES_PROFILE = ROOT / "deploy" / "dagster-postgres.yaml"
ENV = {
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "secret",
    "DAGSTER_PG_DB": "dagster",
    "CSE_IMAGE": "registry.example/cse-dagster:1",
    "CSE_K8S_NAMESPACE": "cse",
}

# A kubeconfig naming a server nobody listens on: the launcher loads it without connecting.
KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def _instance(raw: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(raw))
    config, _ = dagster_instance_config(str(tmp_path))
    return dict(config)


@pytest.fixture
def k8s_yaml() -> dict[str, Any]:
    return yaml.safe_load(K8S_INSTANCE.read_text())


def test_the_k8s_instance_is_valid_for_dagster(tmp_path: Path) -> None:
    shutil.copy(K8S_INSTANCE, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert "postgres" in config["storage"]


def test_a_misspelt_instance_key_fails_dagsters_validation(k8s_yaml: dict[str, Any], tmp_path: Path) -> None:
    k8s_yaml["concurency"] = k8s_yaml.pop("concurrency")
    with pytest.raises(DagsterInvalidConfigError, match="concurency"):
        _instance(k8s_yaml, tmp_path)


def test_the_run_launcher_config_matches_k8s_run_launchers_schema(
    k8s_yaml: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    launcher = process_config(K8sRunLauncher.config_type(), k8s_yaml["run_launcher"]["config"])
    assert launcher.success, launcher.errors
    assert launcher.value["job_image"] == ENV["CSE_IMAGE"]  # env sources resolve
    assert launcher.value["job_namespace"] == "cse"
    assert "CSE_EXECUTOR" in launcher.value["env_vars"]  # run pods pick the same executor


def test_a_misspelt_launcher_key_fails_k8s_run_launchers_schema(k8s_yaml: dict[str, Any]) -> None:
    config = dict(k8s_yaml["run_launcher"]["config"], job_imag="typo")
    result = validate_config(K8sRunLauncher.config_type(), config)
    assert not result.success
    assert "job_imag" in str(result.errors)


def test_the_storage_config_matches_dagster_postgres_schema(
    k8s_yaml: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    storage = process_config(DagsterPostgresStorage.config_type(), k8s_yaml["storage"]["postgres"])
    assert storage.success, storage.errors
    assert storage.value["postgres_db"]["hostname"] == "postgres"
    assert storage.value["postgres_db"]["scheme"] == "postgresql+psycopg2"  # the installed driver
    broken = {"postgres_db": {**k8s_yaml["storage"]["postgres"]["postgres_db"], "hostnme": "x"}}
    assert not validate_config(DagsterPostgresStorage.config_type(), broken).success


def test_the_storage_is_the_postgres_profile_tested_against_a_real_server(k8s_yaml: dict[str, Any]) -> None:
    profile = yaml.safe_load(POSTGRES_PROFILE.read_text())
    assert k8s_yaml["storage"] == profile["storage"]


def test_the_run_pods_get_every_postgres_variable_the_storage_reads(k8s_yaml: dict[str, Any]) -> None:
    read = {
        field["env"] for field in k8s_yaml["storage"]["postgres"]["postgres_db"].values() if isinstance(field, dict)
    }
    launcher = k8s_yaml["run_launcher"]["config"]
    passed = set(launcher["env_vars"]) | {"DAGSTER_PG_PASSWORD"}  # the password from postgres_password_secret
    assert launcher["postgres_password_secret"]
    assert read == {name for name in passed if name.startswith("DAGSTER_PG_")}


def test_the_launcher_builds_from_the_instance_config_without_a_cluster(
    k8s_yaml: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    config = dict(k8s_yaml["run_launcher"]["config"], load_incluster_config=False)
    config["kubeconfig_file"] = str(tmp_path / "kubeconfig")
    processed = process_config(K8sRunLauncher.config_type(), config)
    assert processed.success, processed.errors
    launcher = K8sRunLauncher(**processed.value)
    assert launcher.job_image == ENV["CSE_IMAGE"]
    assert launcher.job_namespace == "cse"
    assert launcher.instance_config_map == "cse-dagster-instance"


def test_the_refresh_job_runs_on_the_k8s_executor_when_chosen() -> None:
    defs = build_definitions(CseSettings(executor="k8s"))
    for job in ("refresh", "data_refresh"):
        assert defs.resolve_job_def(job).executor_def.name == "k8s"
    assert build_definitions(CseSettings()).resolve_job_def("refresh").executor_def.name == "in_process"


def test_the_k8s_executor_accepts_step_config_for_the_training_pods() -> None:
    job = build_definitions(CseSettings(executor="k8s")).resolve_job_def("refresh")
    assert "model_lstm" in {node.name for node in job.graph.nodes}  # the training step the config names
    executor = job.executor_def
    config = {
        "job_namespace": "cse",
        "max_concurrent": 4,
        "per_step_k8s_config": {
            "model_lstm": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}},
        },
    }
    assert validate_config(executor.config_schema.config_type, config).success
    assert not validate_config(executor.config_schema.config_type, {"max_concurent": 4}).success


def test_an_unknown_executor_is_refused_with_the_known_names() -> None:
    with pytest.raises(UnknownNameError, match="in_process, k8s"):
        build_definitions(CseSettings(executor="celery"))


LOAD_PROBE = """
import sys
from cse_assets.definitions import defs
assert defs.resolve_job_def("refresh").executor_def.name == "k8s"
print(sorted({m.split(".")[0] for m in sys.modules} & {"jax", "jaxlib", "flax", "optax", "orbax"}))
"""


def test_the_k8s_definitions_load_from_the_environment_without_jax(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LOAD_PROBE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "CSE_HOME": str(tmp_path), "CSE_EXECUTOR": "k8s"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
