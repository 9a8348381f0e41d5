"""Cleaning the real CryptoDataDownload BTCUSDT 1h file: every duplicate, gap and bad tick is found at its real
time, counted in the report, and nothing disappears without being counted."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from prerequisites import real_data_file

from cse_models.data.clean import CleaningConfig, clean_klines
from cse_models.data.csv_archive import read_kline_csv
from cse_models.data.schema import KLINE_SCHEMA
from cse_models.errors import ConfigError, DataError

HOUR_MS = 3_600_000
RANGE_SPIKE = "2017-08-17 04:00:00+00:00"  # open 16199.91, close 4308.83: the first candle of the file
OPEN_JUMPS = [
    "2018-01-05 10:00:00+00:00",
    "2018-01-15 12:00:00+00:00",
    "2019-06-26 20:00:00+00:00",
    "2019-10-26 01:00:00+00:00",
]


@pytest.fixture(scope="module")
def raw() -> pl.DataFrame:
    return read_kline_csv(real_data_file("Binance_BTCUSDT_1h.csv"))


@pytest.fixture(scope="module")
def dropped(raw):
    return clean_klines(raw, "1h")


@pytest.fixture(scope="module")
def kept(raw):
    return clean_klines(raw, "1h", CleaningConfig(bad_ticks="keep"))


def _times(df: pl.DataFrame) -> np.ndarray:
    return df["open_time"].dt.epoch("ms").to_numpy()


def test_report_counts_real_duplicates(dropped):
    _, report = dropped
    assert report.rows_in == 36062
    assert report.duplicates_removed == 2649
    assert report.duplicates_conflicting == 1442


def test_conflicting_duplicate_keeps_the_complete_row(raw, dropped):
    # 2020-11-20 07:00 appears twice: ms row with trade count (close 18212.0), seconds row without (18143.03)
    clean, _ = dropped
    moment = datetime(2020, 11, 20, 7, tzinfo=UTC)
    assert raw.filter(pl.col("open_time") == moment).height == 2
    row = clean.filter(pl.col("open_time") == moment)
    assert row["close"].to_list() == [18212.0]
    assert row["trades"].to_list() == [93118]


def test_report_lists_bad_ticks_at_their_real_times(dropped):
    _, report = dropped
    assert report.bad_ticks == 5
    assert report.bad_tick_reasons == {
        "non_positive_price": 0,
        "negative_volume": 0,
        "inconsistent_ohlc": 0,
        "open_jump": 4,
        "reverting_spike": 0,  # with spike_sigmas=30 the 2020-03-12/13 crash is real, not a bad tick
        "range_spike": 1,
    }
    assert report.bad_tick_times == [RANGE_SPIKE, *OPEN_JUMPS]
    assert report.bad_ticks_dropped is True


def test_covid_crash_candle_survives_cleaning(dropped):
    clean, _ = dropped
    crash = clean.filter(pl.col("open_time") == datetime(2020, 3, 13, 1, tzinfo=UTC))
    assert crash["low"].to_list() == [4082.0]


def test_bad_ticks_are_dropped_by_default(dropped):
    clean, report = dropped
    present = {str(t) for t in clean["open_time"].to_list()}
    assert present.isdisjoint(report.bad_tick_times)
    assert report.first_open_time == "2017-08-17 05:00:00+00:00"  # the range spike was the first candle
    assert report.last_open_time == "2021-06-10 00:00:00+00:00"


def test_report_counts_gaps_including_holes_left_by_dropped_ticks(dropped, kept):
    _, report = dropped
    assert (report.gaps, report.missing_candles, report.longest_gap_candles) == (12, 20, 4)
    # the file itself has 8 gaps / 16 missing candles; each dropped open jump (not the range spike, which
    # was the first candle) leaves one more single-candle hole
    _, kept_report = kept
    assert (kept_report.gaps, kept_report.missing_candles) == (8, 16)
    assert report.missing_candles == kept_report.missing_candles + len(OPEN_JUMPS)
    assert report.candles_filled == 0


def test_keep_policy_keeps_bad_ticks_but_still_counts_them(dropped, kept):
    clean, report = kept
    assert report.bad_ticks_dropped is False
    assert report.bad_ticks == 5
    assert report.bad_tick_times == [RANGE_SPIKE, *OPEN_JUMPS]
    present = {str(t) for t in clean["open_time"].to_list()}
    assert set(report.bad_tick_times) <= present
    assert report.rows_out == dropped[1].rows_out + 5
    spike = clean.filter(pl.col("open_time") == datetime(2017, 8, 17, 4, tzinfo=UTC))
    assert spike["open"].to_list() == [16199.91]
    assert spike["close"].to_list() == [4308.83]


def test_ffill_inserts_exactly_the_missing_candles_flat_with_zero_volume(raw, dropped):
    clean, report = dropped
    filled, filled_report = clean_klines(raw, "1h", CleaningConfig(gaps="ffill"))
    assert filled_report.candles_filled == report.missing_candles == 20
    assert filled.height == clean.height + 20 == filled_report.rows_out
    assert (np.diff(_times(filled)) == HOUR_MS).all()
    inserted = filled.join(clean.select("open_time"), on="open_time", how="anti")
    assert inserted.height == 20
    for col in ("open", "high", "low"):
        assert (inserted[col] == inserted["close"]).all()
    assert inserted["volume"].to_list() == [0.0] * 20
    assert inserted["quote_volume"].to_list() == [0.0] * 20
    # flat at the last close before the hole: 2018-01-05 10:00 (dropped open jump) repeats 09:00's close
    before = clean.filter(pl.col("open_time") == datetime(2018, 1, 5, 9, tzinfo=UTC))["close"][0]
    hole = inserted.filter(pl.col("open_time") == datetime(2018, 1, 5, 10, tzinfo=UTC))
    assert hole["close"].to_list() == [before]


def test_output_is_sorted_unique_on_the_hourly_grid(dropped):
    clean, _ = dropped
    t = _times(clean)
    assert (np.diff(t) > 0).all()
    assert clean["open_time"].n_unique() == clean.height
    assert (t % HOUR_MS == 0).all()
    assert clean.schema == pl.Schema(KLINE_SCHEMA)
    assert (_times(clean.select(pl.col("close_time").alias("open_time"))) == t + HOUR_MS - 1).all()


def test_every_input_row_is_accounted_for(dropped, kept):
    for clean, report in (dropped, kept):
        dropped_ticks = report.bad_ticks if report.bad_ticks_dropped else 0
        assert report.rows_out == clean.height
        assert report.rows_out + report.duplicates_removed + dropped_ticks == report.rows_in


def test_nothing_silently_dropped_every_distinct_time_is_kept_or_reported(raw, dropped):
    clean, report = dropped
    distinct = set(_times(raw).tolist())
    out = set(_times(clean).tolist())
    reported = {int(datetime.fromisoformat(t).timestamp() * 1000) for t in report.bad_tick_times}
    assert out | reported == distinct
    assert not out & reported


def test_unknown_policy_is_a_config_error():
    with pytest.raises(ConfigError, match="bad_ticks must be 'drop' or 'keep'"):
        CleaningConfig(bad_ticks="fix")


def test_off_grid_candle_is_a_data_error(raw):
    start = raw.sort("open_time").head(5).unique("open_time", keep="first", maintain_order=True)
    shifted = start.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.col("open_time") + pl.duration(minutes=30))
        .otherwise(pl.col("open_time"))
        .alias("open_time")
    )
    with pytest.raises(DataError, match=r"open_time at row 3 .* is not on the interval grid"):
        clean_klines(shifted, "1h", CleaningConfig(bad_ticks="keep"))
