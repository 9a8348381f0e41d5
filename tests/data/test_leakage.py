"""No look-ahead: what the pipeline produces for time ≤ t must not depend on any candle after t.

`assert_no_leak` runs compute_features → fit_feature_scaler → build_datasets on the real sample, then again
with every candle after t changed (prices scaled, or rows shuffled), and demands that every feature row,
the scaler, and every window and target at or before t are exactly equal. Two deliberately leaky pipelines
show the helper would catch a leak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.segments import SplitArrays, build_datasets, compute_features, fit_feature_scaler
from cse_models.features.calendar import calendar_fields
from cse_models.features.scaling import FittedScaler, fit_scaler
from cse_models.features.sets import FEATURE_SETS, FeatureSet, KlineColumns, get_feature_set
from cse_models.features.split import chronological_split

Fit = Callable[[pl.DataFrame, DataConfig], FittedScaler]
LEAKY_NAME = "test_leaky_next_close"


@dataclass
class PipelineOutput:
    features: pl.DataFrame
    scaler: FittedScaler
    datasets: dict[str, SplitArrays]


def run_pipeline(klines: pl.DataFrame, config: DataConfig, fit: Fit = fit_feature_scaler) -> PipelineOutput:
    features = compute_features(klines, config.feature_set)
    scaler = fit(features, config)
    return PipelineOutput(features, scaler, build_datasets(features, scaler, config))


def scale_after(klines: pl.DataFrame, t: datetime) -> pl.DataFrame:
    """Every candle after t: prices × 1.37, volume × 3 (OHLC stays consistent)."""
    later = pl.col("open_time") > t
    return klines.with_columns(
        *(
            pl.when(later).then(pl.col(c) * 1.37).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        ),
        pl.when(later).then(pl.col("volume") * 3).otherwise(pl.col("volume")).alias("volume"),
    )


def shuffle_after(klines: pl.DataFrame, t: datetime) -> pl.DataFrame:
    """Every candle after t gets the prices and volume of another candle after t (times stay in order)."""
    n_before = klines.filter(pl.col("open_time") <= t).height
    order = np.concatenate(
        [np.arange(n_before), n_before + np.random.default_rng(3).permutation(klines.height - n_before)]
    )
    values = ("open", "high", "low", "close", "volume")
    return klines.with_columns(klines.select(values)[order])


def _windows_up_to(part: SplitArrays, t_ms: int, config: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Windows (and their targets) whose inputs and target row all lie at or before t."""
    windows = part.windows(config.seq_len, config.horizon)
    target_times = part.open_time_ms[config.seq_len - 1 + config.horizon :]
    count = int(np.count_nonzero(target_times <= t_ms))
    return windows[:count], part.y[:count]


def assert_no_leak(
    klines: pl.DataFrame,
    t: datetime,
    config: DataConfig,
    change: Callable[[pl.DataFrame, datetime], pl.DataFrame],
    fit: Fit = fit_feature_scaler,
) -> None:
    """Raise AssertionError if anything at or before t changes when the candles after t change."""
    changed = change(klines, t)
    assert changed.height == klines.height
    assert not changed.filter(pl.col("open_time") > t).equals(klines.filter(pl.col("open_time") > t)), "no-op change"
    assert changed.filter(pl.col("open_time") <= t).equals(klines.filter(pl.col("open_time") <= t))

    base, other = run_pipeline(klines, config, fit), run_pipeline(changed, config, fit)
    early = pl.col("open_time") <= t
    assert base.features.filter(early).equals(other.features.filter(early)), "feature rows at or before t differ"
    assert base.scaler == other.scaler, "the scaler depends on candles after t"
    t_ms = int(t.timestamp() * 1000)
    for split in ("train", "val", "test"):
        a, b = base.datasets[split], other.datasets[split]
        rows = a.open_time_ms <= t_ms
        assert np.array_equal(a.x[rows], b.x[rows]), f"{split} scaled rows at or before t differ"
        (wa, ya), (wb, yb) = _windows_up_to(a, t_ms, config), _windows_up_to(b, t_ms, config)
        assert np.array_equal(wa, wb), f"{split} windows at or before t differ"
        assert np.array_equal(ya, yb), f"{split} targets at or before t differ"


@pytest.fixture(scope="module")
def klines() -> pl.DataFrame:
    clean, _ = clean_klines(SampleSource().fetch("BTCUSDT", "1h", None, None), "1h")
    return clean


def _time_in(klines: pl.DataFrame, config: DataConfig, split: str, offset: int) -> datetime:
    part = chronological_split(klines.height, config.split, min_rows=config.seq_len + 2, purge=config.purge)[split]
    assert part.start + offset < part.stop
    return klines["open_time"][part.start + offset]


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("change", [scale_after, shuffle_after], ids=["scaled", "shuffled"])
@pytest.mark.parametrize(("split", "offset"), [("val", 300), ("test", 100)])
def test_nothing_at_or_before_t_depends_on_later_candles(klines, task, change, split, offset):
    config = DataConfig.seed(task=task)
    t = _time_in(klines, config, split, offset)
    assert_no_leak(klines, t, config, change)


def test_train_windows_are_complete_and_identical_when_t_is_in_val(klines):
    # t in val: every train window and target lies before t, so the whole train split must be identical
    config = DataConfig.seed()
    t = _time_in(klines, config, "val", 0)
    a = run_pipeline(klines, config).datasets["train"]
    b = run_pipeline(shuffle_after(klines, t), config).datasets["train"]
    assert a.open_time_ms[-1] < int(t.timestamp() * 1000)
    assert np.array_equal(a.windows(24, 1), b.windows(24, 1)) and np.array_equal(a.y, b.y)


def _next_close_mur9(k: KlineColumns) -> np.ndarray:
    """mur9 with close_change replaced by next close − close: a look-ahead feature."""
    values = get_feature_set("mur9")(k).copy()
    close = np.asarray(k["close"], dtype=np.float64)
    values[:, 8] = np.append(close[1:], close[-1]) - close
    return values


LEAKY_SET = FeatureSet(
    name=LEAKY_NAME,
    feature_names=get_feature_set("mur9").feature_names,
    warmup=0,
    compute=_next_close_mur9,
)


def test_helper_catches_a_feature_that_reads_the_next_candle(klines, monkeypatch):
    config = DataConfig.seed(feature_set=LEAKY_NAME)
    t = _time_in(klines, config, "val", 300)
    with monkeypatch.context() as patch:
        patch.setitem(FEATURE_SETS._entries, LEAKY_NAME, LEAKY_SET)
        with pytest.raises(AssertionError, match="feature rows at or before t differ"):
            assert_no_leak(klines, t, config, scale_after)
    assert LEAKY_NAME not in FEATURE_SETS  # unregistered again


def _fit_on_all_rows(features: pl.DataFrame, config: DataConfig) -> FittedScaler:
    names = tuple(c for c in features.columns if c != "open_time")
    return fit_scaler(config.scaler, features.select(names).to_numpy(), names)


def test_helper_catches_a_scaler_fit_on_val_and_test_rows(klines):
    config = DataConfig.seed()
    t = _time_in(klines, config, "test", 100)
    with pytest.raises(AssertionError, match="the scaler depends on candles after t"):
        assert_no_leak(klines, t, config, scale_after, fit=_fit_on_all_rows)


def test_calendar_fields_are_row_local():
    # the calendar part of mur9 is a pure function of each row's own timestamp
    ms = np.arange(1_600_000_000_000, 1_600_000_000_000 + 500 * 3_600_000, 3_600_000)
    whole = calendar_fields(ms)
    head = calendar_fields(ms[:200])
    for name, values in head.items():
        assert np.array_equal(values, whole[name][:200]), name
