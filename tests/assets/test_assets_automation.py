"""Honest automation against real Dagster instances: the hourly schedule requests only symbols whose source
serves a newer closed candle (and says why it skips the others), source errors are retried only when a
later attempt may succeed, and the instance queues runs and holds JAX steps to one `training` pool slot."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dagster import (
    Backoff,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Jitter,
    RunRequest,
    SkipReason,
    build_schedule_context,
    instance_for_test,
    materialize,
)
from dagster._core.test_utils import create_test_daemon_workspace_context, load_remote_repo
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from fake_binance import FakeBinance, epoch_ms, serve_fake_binance

from cse_assets.assets import data
from cse_assets.catalog import TRAINING_POOL
from cse_assets.definitions import build_definitions, defs, resources_for
from cse_assets.partitions import ensure_symbol_partitions
from cse_assets.resources import DataSettings, KlineSourceResource
from cse_assets.schedules import cse_hourly
from cse_assets.settings import CseSettings
from cse_models.data import binance
from cse_models.model_sets import MODEL_SETS

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
# A live "now" on the fake's hourly grid, 10 minutes into a candle.
LIVE_NOW = datetime(2024, 3, 1, 10, 10, tzinfo=UTC)


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterInstance]:
    monkeypatch.setenv("CSE_HOME", str(tmp_path / "cse"))
    with instance_for_test() as test_instance:
        yield test_instance


def _tick(instance: DagsterInstance, source: KlineSourceResource, settings: DataSettings | None = None):
    context = build_schedule_context(
        instance=instance,
        scheduled_execution_time=WHEN,
        resources={"kline_source": source, "data_settings": settings or DataSettings()},
    )
    return cse_hourly(context)


def _requested(result: list[RunRequest] | SkipReason) -> list[str]:
    return [] if isinstance(result, SkipReason) else [r.partition_key for r in result]


# -- the schedule -----------------------------------------------------------------------------------------


def test_a_symbol_the_sample_cannot_serve_is_skipped_not_requested(instance: DagsterInstance) -> None:
    ensure_symbol_partitions(instance, ["BTCUSDT", "ADAUSDT"])
    assert _requested(_tick(instance, KlineSourceResource())) == ["BTCUSDT"]


def test_when_only_unservable_symbols_remain_the_skip_reason_names_them(instance: DagsterInstance) -> None:
    ensure_symbol_partitions(instance, ["ADAUSDT"])
    result = _tick(instance, KlineSourceResource())
    assert isinstance(result, SkipReason)
    assert "ADAUSDT: the source cannot serve it" in result.skip_message
    assert "the bundled sample has BTCUSDT, ETHUSDT" in result.skip_message


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeBinance, list[datetime]]]:
    """The fake Binance with a movable clock shared by the fake and the real BinanceSource."""
    clock = [LIVE_NOW]
    monkeypatch.setattr(binance, "_utc_now", lambda: clock[0])
    with serve_fake_binance() as fake:
        fake.now_ms = epoch_ms(LIVE_NOW)
        yield fake, clock


def test_a_live_symbol_is_requested_again_only_once_a_newer_candle_has_closed(
    instance: DagsterInstance, live: tuple[FakeBinance, list[datetime]]
) -> None:
    fake, clock = live
    source = KlineSourceResource(kind="binance", api_url=fake.url)
    settings = DataSettings(range_last="last 2 days")
    ensure_symbol_partitions(instance, ["BTCUSDT", "NOSUCHCOIN"])
    assert _requested(_tick(instance, source, settings)) == ["BTCUSDT"]  # never materialized; NOSUCHCOIN skipped

    result = materialize(
        [data.raw_klines],
        partition_key="BTCUSDT",
        resources={"kline_source": source, "data_settings": settings},
        instance=instance,
    )
    assert result.success
    skipped = _tick(instance, source, settings)  # the same hour: the newest closed candle is already used
    assert isinstance(skipped, SkipReason)
    assert "BTCUSDT: already built on its newest candle 2024-03-01T09:00:00+00:00" in skipped.skip_message
    assert "NOSUCHCOIN: the source cannot serve it" in skipped.skip_message

    clock[0] += timedelta(hours=1)
    fake.now_ms = epoch_ms(clock[0])
    assert _requested(_tick(instance, source, settings)) == ["BTCUSDT"]


def test_a_binance_outage_skips_the_symbol_for_this_hour_with_its_reason(
    instance: DagsterInstance, live: tuple[FakeBinance, list[datetime]]
) -> None:
    fake, _ = live
    fake.unavailable_first = 1
    ensure_symbol_partitions(instance, ["BTCUSDT"])
    result = _tick(instance, KlineSourceResource(kind="binance", api_url=fake.url))
    assert isinstance(result, SkipReason)
    assert "BTCUSDT: source unavailable, retried next hour" in result.skip_message


# -- retries ----------------------------------------------------------------------------------------------


def test_raw_klines_retries_with_exponential_backoff_and_jitter() -> None:
    policy = data.raw_klines.op.retry_policy
    assert (policy.backoff, policy.jitter) == (Backoff.EXPONENTIAL, Jitter.PLUS_MINUS)
    assert policy.max_retries >= 2 and policy.delay > 0


def _step_events(instance: DagsterInstance, run_id: str) -> list[DagsterEventType]:
    return [e.dagster_event.event_type for e in instance.all_logs(run_id) if e.dagster_event]


def test_a_missing_sample_symbol_fails_once_and_is_not_retried(instance: DagsterInstance) -> None:
    ensure_symbol_partitions(instance, ["ADAUSDT"])
    result = materialize(
        [data.raw_klines],
        partition_key="ADAUSDT",
        resources=resources_for("local"),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    events = _step_events(instance, result.run_id)
    assert events.count(DagsterEventType.STEP_FAILURE) == 1
    assert DagsterEventType.STEP_UP_FOR_RETRY not in events
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure.metadata["error_type"].value == "SourceError"
    assert failure.metadata["retryable"].value is False


def test_a_binance_5xx_is_retried_by_the_policy_and_the_step_succeeds(
    instance: DagsterInstance, live: tuple[FakeBinance, list[datetime]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real policy, with its jitter drawn at its low end so that the first retry waits 0 s, not ~10 s."""
    import dagster._core.definitions.policy as dagster_policy

    monkeypatch.setattr(dagster_policy, "random", lambda: 0.0)
    fake, _ = live
    fake.unavailable_first = 1
    ensure_symbol_partitions(instance, ["BTCUSDT"])
    result = materialize(
        [data.raw_klines],
        partition_key="BTCUSDT",
        resources={
            "kline_source": KlineSourceResource(kind="binance", api_url=fake.url),
            "data_settings": DataSettings(range_last="last 2 days"),
        },
        instance=instance,
    )
    assert result.success
    events = _step_events(instance, result.run_id)
    assert events.count(DagsterEventType.STEP_UP_FOR_RETRY) == 1
    assert events.count(DagsterEventType.STEP_SUCCESS) == 1


# -- queue, pool, freshness -------------------------------------------------------------------------------


def test_the_default_instance_queues_runs_and_gives_the_training_pool_one_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as loaded:
        config = loaded.get_concurrency_config()
        assert type(loaded.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert config.run_queue_config.max_concurrent_runs == 2
        assert config.run_queue_config.should_block_op_concurrency_limited_runs
        assert (config.pool_config.pool_granularity.value, config.pool_config.default_pool_limit) == ("run", 1)
        assert loaded.event_log_storage.supports_global_concurrency_limits


def test_every_jax_step_and_only_those_are_in_the_training_pool() -> None:
    defs = build_definitions(CseSettings(model_set="zoo"))
    pools = {a.key.to_user_string(): a.op.pool for a in defs.assets}
    specs = MODEL_SETS.get("zoo")
    jax_steps = {f"{kind}_{s.name}" for s in specs for kind in ("model", "onnx", "global_model")}
    jax_steps |= {"evaluation", "ensemble_weights"}
    assert len(jax_steps) > 3
    assert {k for k, pool in pools.items() if pool == TRAINING_POOL} == jax_steps
    assert {c.op.pool for c in defs.asset_checks if c.op.name.endswith("onnx_parity")} == {TRAINING_POOL}


def test_published_model_has_a_freshness_policy_and_nothing_else_does() -> None:
    defs = build_definitions(CseSettings())
    policies = {spec.key.to_user_string(): spec.freshness_policy for a in defs.assets for spec in a.specs}
    assert [k for k, policy in policies.items() if policy is not None] == ["published_model"]
    assert policies["published_model"].fail_window.to_timedelta() == timedelta(hours=3)


def _queued_run(instance: DagsterInstance, remote_repo, job_name: str, symbol: str) -> str:
    """A run as the scheduler or the UI submits it: QUEUED, with the code location's origins."""
    remote_job = remote_repo.get_full_job(job_name)
    run = instance.create_run_for_job(
        job_def=defs.resolve_job_def(job_name),
        status=DagsterRunStatus.QUEUED,
        tags={"dagster/partition": symbol},
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
    )
    return run.run_id


def test_the_queue_daemon_starts_one_training_run_at_a_time_beside_a_data_run(tmp_path: Path) -> None:
    """The hourly tick's two refreshes and a data-only refresh, queued on an instance with dagster.yaml's
    queue and pool settings; one iteration of Dagster's own queue daemon (the run launcher only records)."""
    settings: Mapping = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    overrides = {
        "run_coordinator": settings["run_coordinator"],
        "concurrency": settings["concurrency"],
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }
    target = ModuleTarget(
        module_name="cse_assets.definitions", attribute="defs", working_directory=str(ROOT), location_name="cse"
    )
    with (
        instance_for_test(overrides=overrides) as instance,
        create_test_daemon_workspace_context(target, instance) as workspace,
    ):
        ensure_symbol_partitions(instance, ["BTCUSDT", "ETHUSDT"])
        assert _requested(_tick(instance, KlineSourceResource())) == ["BTCUSDT", "ETHUSDT"]
        repo = load_remote_repo(workspace, "__repository__")
        runs = {
            "refresh BTCUSDT": _queued_run(instance, repo, "refresh", "BTCUSDT"),
            "refresh ETHUSDT": _queued_run(instance, repo, "refresh", "ETHUSDT"),
            "data_refresh BTCUSDT": _queued_run(instance, repo, "data_refresh", "BTCUSDT"),
        }
        list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(workspace))
        status = {name: instance.get_run_by_id(run_id).status for name, run_id in runs.items()}
    assert status == {
        "refresh BTCUSDT": DagsterRunStatus.STARTING,
        "refresh ETHUSDT": DagsterRunStatus.QUEUED,  # waits for the training pool's one slot
        "data_refresh BTCUSDT": DagsterRunStatus.STARTING,  # no JAX step: the queue's second run
    }
