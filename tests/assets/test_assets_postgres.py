"""The Postgres instance profile (deploy/dagster-postgres.yaml) against a real PostgreSQL server: a symbol
partition of the data assets is materialized through it, and its run, events and partitions are rows in
Postgres — not in SQLite files under $DAGSTER_HOME."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, materialize
from postgres_server import DATABASE, USER, PostgresServer, postgres_for_tests

from cse_assets.assets import data
from cse_assets.definitions import resources_for
from cse_assets.partitions import ensure_symbol_partitions

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "deploy" / "dagster-postgres.yaml"
ASSETS = [data.raw_klines, data.klines, data.features]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_for_tests() as server:
        yield server


@pytest.fixture
def instance(postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROFILE, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name, value in {
        "HOST": "127.0.0.1",
        "PORT": str(postgres.port),
        "DB": DATABASE,
        "USERNAME": USER,
        "PASSWORD": "unused-under-trust-auth",
    }.items():
        monkeypatch.setenv(f"DAGSTER_PG_{name}", value)
    monkeypatch.setenv("CSE_HOME", str(tmp_path / "cse"))
    with DagsterInstance.get() as loaded:
        yield loaded


def _rows(server: PostgresServer, query: str) -> list[tuple]:
    with psycopg2.connect(server.dsn) as conn, conn.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def test_a_symbol_partition_materializes_into_postgres(instance: DagsterInstance, postgres: PostgresServer) -> None:
    ensure_symbol_partitions(instance, ["BTCUSDT"])
    result = materialize(ASSETS, partition_key="BTCUSDT", resources=resources_for("local"), instance=instance)
    assert result.success

    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert instance.get_run_by_id(result.run_id).status == DagsterRunStatus.SUCCESS
    runs = _rows(postgres, "SELECT run_id, status FROM runs")
    assert (result.run_id, "SUCCESS") in runs
    materialized = _rows(
        postgres,
        "SELECT asset_key, partition FROM event_logs "
        f"WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND run_id = '{result.run_id}'",
    )
    assert sorted(materialized) == sorted((AssetKey(a.key.path).to_string(), "BTCUSDT") for a in ASSETS)
    assert ("BTCUSDT",) in _rows(
        postgres, "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'symbols'"
    )
    assert not list(Path(os.environ["DAGSTER_HOME"]).rglob("*.db"))  # nothing went to SQLite


def test_the_profile_keeps_the_queue_and_pool_limits(instance: DagsterInstance) -> None:
    config = instance.get_concurrency_config()
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert config.run_queue_config.max_concurrent_runs == 2
    assert (config.pool_config.pool_granularity.value, config.pool_config.default_pool_limit) == ("run", 1)
    assert instance.event_log_storage.supports_global_concurrency_limits  # pool slots live in Postgres
