"""Feature sets, calendar fields, scalers, split and windows: values checked by hand and against pandas."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.segments import (
    build_datasets,
    compute_features,
    fit_feature_scaler,
    load_datasets,
    save_datasets,
)
from cse_models.errors import DataError
from cse_models.features.calendar import calendar_fields
from cse_models.features.scaling import FittedScaler, fit_scaler
from cse_models.features.split import SplitConfig, chronological_split
from cse_models.features.windows import classification_targets, regression_targets, sliding_windows

MUR9 = ("day_of_week", "day_of_month", "week_of_year", "month", "open", "high", "low", "close", "close_change")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def klines() -> pl.DataFrame:
    """The bundled real sample, BTCUSDT 1h 2020-06-10 … 2021-06-10, cleaned."""
    clean, _ = clean_klines(SampleSource().fetch("BTCUSDT", "1h", None, None), "1h")
    return clean


@pytest.fixture(scope="module")
def features(klines) -> pl.DataFrame:
    return compute_features(klines, "mur9")


def _row(features: pl.DataFrame, moment: datetime) -> dict:
    rows = features.filter(pl.col("open_time") == moment).to_dicts()
    assert len(rows) == 1
    return rows[0]


# --- feature sets ---


def test_mur9_columns_and_row_count(klines, features):
    assert features.columns == ["open_time", *MUR9]
    assert features.height == klines.height
    assert all(dtype == pl.Float64 for dtype in features.drop("open_time").dtypes)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Friday 2021-01-01 belongs to ISO week 53 of 2020; real candle open 28923.63 close 28995.13
        (
            utc(2021, 1, 1, 0),
            dict(
                day_of_week=4,
                day_of_month=1,
                week_of_year=53,
                month=1,
                open=28923.63,
                high=29031.34,
                low=28690.17,
                close=28995.13,
            ),
        ),
        # Monday 2021-01-04 10:00 starts ISO week 1; the candle fell from 31038.35 to 30270.76
        (
            utc(2021, 1, 4, 10),
            dict(
                day_of_week=0,
                day_of_month=4,
                week_of_year=1,
                month=1,
                open=31038.35,
                high=31227.33,
                low=28130.0,
                close=30270.76,
            ),
        ),
        # Thursday 2020-12-31 23:00 is still ISO week 53 of 2020
        (utc(2020, 12, 31, 23), dict(day_of_week=3, day_of_month=31, week_of_year=53, month=12)),
    ],
)
def test_mur9_real_rows_by_hand(features, moment, expected):
    row = _row(features, moment)
    for name, value in expected.items():
        assert row[name] == value, name
    assert row["close_change"] == row["close"] - row["open"]


def test_mur9_close_change_is_close_minus_open_of_the_same_candle(features):
    row = _row(features, utc(2021, 1, 1, 0))
    assert row["close_change"] == pytest.approx(28995.13 - 28923.63)  # 71.50, not close − previous close


def test_ohlc4_is_open_high_low_close(klines):
    table = compute_features(klines, "ohlc4")
    assert table.columns == ["open_time", "open", "high", "low", "close"]
    assert table.drop("open_time").equals(klines.select("open", "high", "low", "close"))


def test_calendar_fields_match_pandas_over_three_centuries():
    rng = np.random.default_rng(7)
    start, stop = pd.Timestamp("1900-01-01").value // 10**6, pd.Timestamp("2200-12-31").value // 10**6
    ms = np.sort(rng.integers(start, stop, size=50_000))  # sparser than one per day: the direct path
    ms = np.concatenate([ms, [0, -1, 1609459200000, 1609459199999]])  # epoch edges, 2021-01-01 ± 1 ms
    fields = calendar_fields(ms)
    ts = pd.to_datetime(ms, unit="ms")
    assert (fields["day_of_week"] == ts.dayofweek).all()
    assert (fields["day_of_month"] == ts.day).all()
    assert (fields["week_of_year"] == ts.isocalendar().week.to_numpy()).all()
    assert (fields["month"] == ts.month).all()


def test_calendar_fields_hourly_path_matches_pandas():
    # dense intraday timestamps take the per-day lookup path; every hour of 2019-12-20 … 2021-01-10
    ms = np.arange(pd.Timestamp("2019-12-20").value // 10**6, pd.Timestamp("2021-01-10").value // 10**6, 3_600_000)
    fields = calendar_fields(ms)
    ts = pd.to_datetime(ms, unit="ms")
    assert (fields["week_of_year"] == ts.isocalendar().week.to_numpy()).all()
    assert (fields["day_of_month"] == ts.day).all()
    assert (fields["day_of_week"] == ts.dayofweek).all()
    assert (fields["month"] == ts.month).all()


# --- scaler ---


def test_scaler_is_fit_on_the_train_rows_only(features):
    config = DataConfig.seed()
    scaler = fit_feature_scaler(features, config)
    train = chronological_split(features.height, config.split, min_rows=config.seq_len + 2, purge=config.purge)["train"]
    assert scaler.fit_rows == train.stop - train.start
    times = features["open_time"].dt.epoch("ms").to_numpy()
    assert (scaler.fit_first_time_ms, scaler.fit_last_time_ms) == (times[train.start], times[train.stop - 1])
    close = features["close"].to_numpy()
    i = MUR9.index("close")
    # min / max of the train rows map to exactly -1 / +1
    assert close[train].min() * scaler.scale[i] + scaler.min[i] == pytest.approx(-1.0)
    assert close[train].max() * scaler.scale[i] + scaler.min[i] == pytest.approx(1.0)


def test_scaled_train_is_in_range_and_a_later_new_high_scales_above_one(features):
    config = DataConfig.seed()
    data = build_datasets(features, fit_feature_scaler(features, config), config)
    assert data["train"].x.min() >= -1.0 - 1e-6 and data["train"].x.max() <= 1.0 + 1e-6
    i = MUR9.index("close")
    train_high = data["train"].close.max()
    val = data["val"]
    first_new_high = int(np.flatnonzero(val.close > train_high)[0])  # BTC broke its 2020 highs in 2021
    assert val.x[first_new_high, i] > 1.0
    assert val.x[:, i].max() > 1.0


def test_scaler_json_round_trip(features, tmp_path):
    scaler = fit_feature_scaler(features, DataConfig.seed())
    path = tmp_path / "scaler.json"
    scaler.save(path)
    loaded = FittedScaler.load(path)
    assert loaded == scaler
    x = features.drop("open_time").to_numpy()
    assert np.array_equal(loaded.transform(x), scaler.transform(x))


def test_scaler_json_missing_field_is_a_data_error():
    with pytest.raises(DataError, match="not a valid scaler"):
        FittedScaler.from_json('{"kind": "minmax", "feature_names": ["close"]}')


def test_standard_scaler_gives_zero_mean_unit_std():
    rng = np.random.default_rng(0)
    x = rng.normal([5.0, -3.0, 100.0], [2.0, 0.5, 30.0], size=(1000, 3))
    x[:, 1] = 7.0  # a constant column keeps scale 1
    scaler = fit_scaler("standard", x, ("a", "b", "c"))
    scaled = scaler.transform(x)
    assert np.allclose(scaled.mean(axis=0), 0.0, atol=1e-12)
    assert np.allclose(scaled[:, [0, 2]].std(axis=0), 1.0)
    assert scaler.scale[1] == 1.0 and np.all(scaled[:, 1] == 0.0)
    assert np.allclose(scaler.inverse_column(scaled[:, 2], "c"), x[:, 2])


def test_minmax_constant_column_maps_to_minus_one():
    x = np.column_stack([np.arange(10.0), np.full(10, 3.0)])
    scaled = fit_scaler("minmax", x, ("a", "b")).transform(x)
    assert scaled[0, 0] == -1.0 and scaled[-1, 0] == 1.0
    assert np.all(scaled[:, 1] == -1.0)


# --- windows and targets ---


def test_windows_are_views_with_targets_at_t_plus_horizon():
    x = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    seq, horizon = 6, 2
    windows = sliding_windows(x, seq, horizon)
    assert windows.shape == (50 - seq - horizon + 1, seq, 3)
    assert np.shares_memory(windows, x)
    assert np.array_equal(windows[0], x[0:seq]) and np.array_equal(windows[-1], x[-seq - horizon : -horizon])
    y = regression_targets(x[:, 2], seq, horizon)
    assert len(y) == len(windows)
    for i in (0, 7, len(y) - 1):
        assert y[i] == x[i + seq - 1 + horizon, 2]


def test_dataset_windows_share_memory_with_the_split_features(features):
    config = DataConfig.seed()
    data = build_datasets(features, fit_feature_scaler(features, config), config)
    i = MUR9.index("close")
    for part in data.values():
        windows = part.windows(config.seq_len, config.horizon)
        assert windows.shape == (len(part.y), config.seq_len, len(MUR9))
        assert np.shares_memory(windows, part.x)
        assert part.x.dtype == np.float32
        assert np.array_equal(part.y, part.x[config.seq_len :, i])  # horizon 1: the row after each window


def test_classification_targets_sell_hold_buy_by_hand():
    close = np.array([100.0, 100.0, 101.0, 100.9, 100.95, 100.0, 100.1])
    # seq 2, horizon 1: window i ends at row i+1, target compares row i+2 with row i+1
    y = classification_targets(close, seq_len=2, horizon=1, band=0.002)
    # 101/100 = +1 % buy; 100.9/101 = -0.099 % hold; 100.95/100.9 = +0.05 % hold;
    # 100/100.95 = -0.94 % sell; 100.1/100 = +0.1 % hold
    assert y.tolist() == [2, 1, 1, 0, 1]
    assert y.dtype == np.int32


def test_classification_return_exactly_at_the_band_is_hold():
    close = np.array([100.0, 100.0, 125.0, 100.0, 75.0])  # +25 %, -20 %, -25 % against a 25 % band
    assert classification_targets(close, seq_len=1, horizon=1, band=0.25).tolist() == [1, 1, 1, 1]
    assert classification_targets(close, seq_len=1, horizon=1, band=0.2).tolist() == [1, 2, 1, 0]


def test_window_shorter_than_sequence_is_a_data_error():
    with pytest.raises(DataError, match="10 rows give no window of 24 rows"):
        sliding_windows(np.zeros((10, 2)), 24, 1)


# --- split ---


def test_split_has_a_purge_gap_of_seq_len_rows():
    config = DataConfig.seed(seq_len=24)
    slices = chronological_split(8749, config.split, min_rows=26, purge=config.purge)
    assert slices["train"].start == 0 and slices["test"].stop == 8749
    assert slices["val"].start - slices["train"].stop == 24
    assert slices["test"].start - slices["val"].stop == 24
    assert (slices["train"].stop, slices["val"].stop) == (int(8701 * 0.72), int(8701 * 0.72) + int(8701 * 0.18) + 24)


def test_split_explicit_purge_overrides_seq_len():
    config = DataConfig.seed(seq_len=24, split=SplitConfig(purge=5))
    slices = chronological_split(1000, config.split, min_rows=26, purge=config.purge)
    assert slices["val"].start - slices["train"].stop == 5


def test_too_few_rows_names_the_rows_needed():
    with pytest.raises(
        DataError, match=r"100 rows are too few: the val split gets 9 rows, needs ≥ 26 \(about 309 rows"
    ):
        chronological_split(100, SplitConfig(), min_rows=26, purge=24)
    # and the count it names is enough
    chronological_split(309, SplitConfig(), min_rows=26, purge=24)


def test_datasets_round_trip_through_npz(features, tmp_path):
    config = DataConfig.seed(task="classification")
    data = build_datasets(features, fit_feature_scaler(features, config), config)
    save_datasets(data, tmp_path / "datasets.npz")
    loaded = load_datasets(tmp_path / "datasets.npz")
    for split, part in data.items():
        for field in ("x", "close", "open_time_ms", "y"):
            assert np.array_equal(getattr(loaded[split], field), getattr(part, field)), (split, field)


@pytest.mark.parametrize("nan_at", ["none", "prefix", "middle", "all"])
def test_trailing_mean_is_the_windowed_mean_with_nan_windows_left_out(nan_at: str) -> None:
    from numpy.lib.stride_tricks import sliding_window_view

    from cse_models.features.trailing import trailing_mean

    values = np.random.default_rng(3).normal(size=200)
    values[{"none": slice(0), "prefix": slice(0, 7), "middle": slice(90, 91), "all": slice(None)}[nan_at]] = np.nan
    for n in (1, 24, 168, 200):
        expected = np.concatenate([np.full(n - 1, np.nan), sliding_window_view(values, n).mean(axis=1)])
        np.testing.assert_allclose(trailing_mean(values, n), expected, rtol=1e-9, atol=1e-12)
    assert np.isnan(trailing_mean(values, 201)).all()
