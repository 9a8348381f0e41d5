"""The data asset graph, materialized for real with `dagster.materialize` on the bundled sample."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    ExecuteInProcessResult,
    SensorResult,
    SkipReason,
    build_sensor_context,
    load_asset_checks_from_modules,
    materialize,
)

from cse_assets import checks
from cse_assets.assets import data
from cse_assets.checks import klines_unique_and_monotonic, scaler_fit_on_train_rows_only
from cse_assets.codecs import codec_for
from cse_assets.definitions import defs, resources_for
from cse_assets.partitions import BUNDLED_SYMBOLS, ensure_symbol_partitions, seed_symbols_sensor
from cse_assets.resources import DataSettings, KlineSourceResource
from cse_models.datasets.segments import load_datasets
from cse_models.errors import UnknownNameError
from cse_models.features.scaling import FittedScaler, fit_scaler

DATA_ASSETS = [data.raw_klines, data.klines, data.features, data.scaler, data.datasets]
CHECKS = load_asset_checks_from_modules([checks])


@pytest.fixture
def instance() -> DagsterInstance:
    return DagsterInstance.ephemeral()


@pytest.fixture
def cse_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CSE_HOME", str(tmp_path))
    return tmp_path


def _run(instance: DagsterInstance, symbol: str, assets: list, **resource_overrides) -> ExecuteInProcessResult:
    ensure_symbol_partitions(instance, [symbol])
    resources = {**resources_for("local"), **resource_overrides}
    return materialize(assets, partition_key=symbol, resources=resources, instance=instance, raise_on_error=False)


def _failure_message(result: ExecuteInProcessResult) -> str:
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    return failure.step_failure_data.error.message


def _metadata(result: ExecuteInProcessResult, asset: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(asset)
    return {key: value.value for key, value in materialization.metadata.items()}


@pytest.fixture(scope="module")
def btc_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExecuteInProcessResult, Path]:
    """One materialization of the whole data group for BTCUSDT, shared by the tests that read it."""
    home = tmp_path_factory.mktemp("cse_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CSE_HOME", str(home))
        result = _run(DagsterInstance.ephemeral(), "BTCUSDT", [*DATA_ASSETS, *CHECKS])
    return result, home


def test_data_group_materializes_every_file_for_a_sample_symbol(btc_run) -> None:
    result, home = btc_run
    assert result.success
    for asset, name in [
        ("raw_klines", "BTCUSDT.parquet"),
        ("klines", "BTCUSDT.parquet"),
        ("features", "BTCUSDT.parquet"),
        ("scaler", "BTCUSDT.scaler.json"),
        ("datasets", "BTCUSDT.npz"),
    ]:
        assert (home / "assets" / asset / name).is_file(), (asset, name)
    klines = pl.read_parquet(home / "assets" / "klines" / "BTCUSDT.parquet")
    assert klines.get_column("open_time").is_sorted() and klines.get_column("open_time").is_unique().all()
    scaler = FittedScaler.load(home / "assets" / "scaler" / "BTCUSDT.scaler.json")
    datasets = load_datasets(home / "assets" / "datasets" / "BTCUSDT.npz")
    assert datasets["train"].x.shape == (scaler.fit_rows, len(scaler.feature_names))


def test_klines_metadata_carries_the_cleaning_report_and_a_chart(btc_run) -> None:
    meta = _metadata(btc_run[0], "klines")
    assert meta["duplicates_removed"] > 0  # the raw sample repeats ~2649 candles
    assert meta["cleaning_report"]["duplicates_removed"] == meta["duplicates_removed"]
    assert {"gaps", "missing_candles", "bad_ticks", "bad_tick_reasons"} <= meta["cleaning_report"].keys()
    assert meta["rows"] == meta["rows_out"] > 8000
    assert meta["first_open_time"] < meta["last_open_time"]
    assert "data:image/png;base64," in meta["chart"]


def test_cleaning_counts_are_a_table_with_bad_ticks_per_reason(btc_run) -> None:
    meta = _metadata(btc_run[0], "klines")
    counts = {record.data["what"]: record.data["count"] for record in meta["cleaning_counts"].records}
    assert counts["duplicates_removed"] == meta["duplicates_removed"] > 0
    assert counts["rows_out"] == meta["rows_out"]
    reasons = meta["cleaning_report"]["bad_tick_reasons"]
    assert {f"bad_ticks/{reason}": n for reason, n in reasons.items()}.items() <= counts.items()


def test_every_data_check_passes_on_the_sample(btc_run) -> None:
    evaluations = btc_run[0].get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {
        "klines_unique_and_monotonic",
        "features_finite_after_warmup",
        "scaler_fit_on_train_rows_only",
    }
    assert all(e.passed for e in evaluations), [(e.check_name, e.metadata) for e in evaluations if not e.passed]


def test_datasets_and_scaler_metadata_count_windows_and_fit_rows(btc_run) -> None:
    windows = _metadata(btc_run[0], "datasets")
    assert all(windows[f"{split}_windows"] > 0 for split in ("train", "val", "test"))
    scaler_meta = _metadata(btc_run[0], "scaler")
    assert scaler_meta["fit_rows"] > windows["train_windows"]
    assert scaler_meta["fit_first_time"] < scaler_meta["fit_last_time"]


def test_symbol_missing_from_the_sample_fails_naming_the_sample_symbols(instance, cse_home) -> None:
    message = _failure_message(_run(instance, "DOGEUSDT", [data.raw_klines]))
    assert "DOGEUSDT" in message
    assert all(symbol in message for symbol in BUNDLED_SYMBOLS)
    assert not (cse_home / "assets" / "raw_klines" / "DOGEUSDT.parquet").exists()


def test_csv_with_a_non_numeric_price_fails_naming_row_and_column(instance, cse_home, tmp_path) -> None:
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "Binance_XRPUSDT_1h.csv").write_text(
        "https://www.CryptoDataDownload.com\n"
        "unix,date,symbol,open,high,low,close,Volume XRP,Volume USDT,tradecount\n"
        "1623283200000,2021-06-10 00:00:00,XRP/USDT,0.9,0.91,0.89,0.905,100,90,10\n"
        "1623279600000,2021-06-09 23:00:00,XRP/USDT,0.88,0.9,0.87,oops,100,90,10\n"
    )
    source = KlineSourceResource(kind="csv", csv_dir=str(csv_dir))
    message = _failure_message(_run(instance, "XRPUSDT", [data.raw_klines], kline_source=source))
    assert "column 'close' row 1 is not a number ('oops')" in message


def test_csv_source_without_a_directory_fails_naming_the_field(instance, cse_home) -> None:
    message = _failure_message(
        _run(instance, "BTCUSDT", [data.raw_klines], kline_source=KlineSourceResource(kind="csv"))
    )
    assert "csv_dir" in message


def test_empty_range_fails_with_the_library_message(instance, cse_home) -> None:
    settings = DataSettings(range_last=None, range_start="2030-01-01", range_end="2030-02-01")
    message = _failure_message(_run(instance, "BTCUSDT", [data.raw_klines], data_settings=settings))
    assert "no klines between" in message


def test_klines_check_fails_on_a_repeated_candle() -> None:
    times = pl.Series("open_time", [0, 3_600_000, 3_600_000, 7_200_000]).cast(pl.Datetime("ms", "UTC"))
    result = klines_unique_and_monotonic(klines=pl.DataFrame([times]))
    assert not result.passed
    assert result.metadata["first_bad_row"].value == 2


def test_scaler_check_fails_when_the_scaler_saw_every_row(btc_run) -> None:
    features = pl.read_parquet(btc_run[1] / "assets" / "features" / "BTCUSDT.parquet")
    names = tuple(c for c in features.columns if c != "open_time")
    leaky = fit_scaler(
        "minmax", features.select(names).to_numpy(), names, features["open_time"].dt.epoch("ms").to_numpy()
    )
    result = scaler_fit_on_train_rows_only(scaler=leaky, features=features, data_settings=DataSettings())
    assert not result.passed


def test_seed_sensor_adds_the_bundled_symbols_only_when_missing(instance) -> None:
    first = seed_symbols_sensor(build_sensor_context(instance=instance))
    assert isinstance(first, SensorResult)
    (request,) = first.dynamic_partitions_requests
    assert request.partitions_def_name == "symbols" and list(request.partition_keys) == list(BUNDLED_SYMBOLS)
    assert ensure_symbol_partitions(instance, BUNDLED_SYMBOLS) == list(BUNDLED_SYMBOLS)
    assert isinstance(seed_symbols_sensor(build_sensor_context(instance=instance)), SkipReason)


def test_io_manager_refuses_types_without_a_codec() -> None:
    with pytest.raises(TypeError, match=r"cannot store a set; it stores: DataFrame, .*FittedScaler.*dict"):
        codec_for(set)
    with pytest.raises(TypeError, match="dict only as dict"):
        codec_for(dict).save({"accuracy": 0.5}, Path("unused.npz"))


def test_definitions_load_with_the_data_group_job_and_sensor() -> None:
    repo = defs.get_repository_def()
    job = defs.resolve_job_def("data_refresh")
    assert set(job.asset_layer.executable_asset_keys) >= {AssetKey(a.key.path) for a in DATA_ASSETS}
    assert repo.has_sensor_def("seed_symbols_sensor")
    assert {"kline_source", "data_settings", "cse_home", "model_store", "io_manager"} <= defs.resources.keys()


def test_unknown_deployment_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="known: live, local"):
        resources_for("staging")
