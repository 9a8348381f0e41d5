"""cse_hourly refreshes only the symbols whose source has newer candles than the graph last used."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, SkipReason, build_schedule_context, instance_for_test, materialize

from cse_assets.assets import data
from cse_assets.definitions import resources_for
from cse_assets.partitions import ensure_symbol_partitions
from cse_assets.resources import DataSettings, KlineSourceResource
from cse_assets.schedules import cse_hourly

WHEN = datetime(2026, 1, 1, 12, 5, tzinfo=UTC)


def _tick(instance: DagsterInstance):
    context = build_schedule_context(
        instance=instance,
        scheduled_execution_time=WHEN,
        resources={"kline_source": KlineSourceResource(), "data_settings": DataSettings()},
    )
    return cse_hourly(context)


@pytest.fixture
def instance():
    with instance_for_test() as test_instance:
        yield test_instance


def test_symbols_never_materialized_are_stale(instance):
    ensure_symbol_partitions(instance, ["BTCUSDT", "ETHUSDT"])
    requests = _tick(instance)
    assert sorted(r.partition_key for r in requests) == ["BTCUSDT", "ETHUSDT"]
    assert requests[0].run_key.endswith("20260101T12")


def test_a_symbol_trained_on_its_newest_candles_is_not_refreshed(instance, tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CSE_HOME", str(tmp_path))
    ensure_symbol_partitions(instance, ["BTCUSDT", "ETHUSDT"])
    result = materialize(
        [data.raw_klines], partition_key="BTCUSDT", resources=resources_for("local"), instance=instance
    )
    assert result.success
    requests = _tick(instance)
    assert [r.partition_key for r in requests] == ["ETHUSDT"]


def test_nothing_stale_skips_with_a_reason(instance, tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CSE_HOME", str(tmp_path))
    ensure_symbol_partitions(instance, ["ETHUSDT"])
    materialize([data.raw_klines], partition_key="ETHUSDT", resources=resources_for("local"), instance=instance)
    assert isinstance(_tick(instance), SkipReason)
