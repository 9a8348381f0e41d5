"""Every common OHLCV CSV reads as a newcomer would write it: pandas `df.to_csv()`, yfinance downloads, plain
exports — from the real bundled candles — and markets that close (weekends, nights) load, with their calendar
gaps counted apart from unexpected ones."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime

import pandas as pd
import polars as pl
import pytest

from cse_models.data.clean import clean_klines
from cse_models.data.csv_archive import read_kline_csv, read_kline_file
from cse_models.data.file_sources import CsvArchiveSource, SampleSource
from cse_models.errors import DataError


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


COLS = ["open_time", "open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def hourly() -> pl.DataFrame:
    """The bundled real BTCUSDT 1h candles, cleaned: 2020-06-10 → 2021-06-10."""
    klines, _ = clean_klines(SampleSource().fetch("BTCUSDT", "1h", None, None), "1h")
    return klines


@pytest.fixture(scope="module")
def daily(hourly) -> pl.DataFrame:
    """Real daily bars aggregated from the hourly sample."""
    return (
        hourly.group_by_dynamic("open_time", every="1d")
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .select(COLS)
    )


def pandas_frame(klines: pl.DataFrame, names: tuple[str, ...] = ("Open", "High", "Low", "Close", "Volume")):
    """A pandas frame indexed by UTC open time, as `yf`/pandas users hold candles."""
    index = pd.DatetimeIndex(klines["open_time"].dt.replace_time_zone(None).to_numpy()).tz_localize("UTC")
    columns = {name: klines[col].to_numpy() for name, col in zip(names, COLS[1:], strict=True)}
    return pd.DataFrame(columns, index=index)


def weekdays_only(klines: pl.DataFrame) -> pl.DataFrame:
    return klines.filter(pl.col("open_time").dt.weekday() <= 5)


def test_pandas_to_csv_with_unnamed_utc_index_reads_back_the_same_candles(hourly, tmp_path):
    klines = hourly.tail(48)
    path = tmp_path / "btc.csv"
    pandas_frame(klines).to_csv(path)
    assert path.read_text().splitlines()[0] == ",Open,High,Low,Close,Volume"
    assert path.read_text().splitlines()[1].startswith("2021-06-08 01:00:00+00:00,")
    read = read_kline_file(path)
    assert read.format == "pandas_date_index"
    assert read.description == "pandas/yfinance date-index CSV (time column '')"
    assert read.klines.select(COLS).equals(klines.select(COLS))


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_pandas_date_index_with_adj_close_ignores_it_and_says_so(hourly, tmp_path, tz):
    klines = hourly.tail(24)
    frame = pandas_frame(klines)
    frame.insert(4, "Adj Close", frame["Close"] * 0.99)
    frame.index = frame.index.tz_convert(tz) if tz else frame.index.tz_localize(None)
    frame.index.name = "Date"
    path = tmp_path / "yahoo.csv"
    frame.to_csv(path)
    assert path.read_text().splitlines()[0] == "Date,Open,High,Low,Close,Adj Close,Volume"
    read = read_kline_file(path)
    assert read.format == "pandas_date_index"
    assert "ignored ['Adj Close']" in read.description
    assert read.klines.select(COLS).equals(klines.select(COLS))


def test_lower_case_timestamp_index_is_a_plain_ohlcv_csv(hourly, tmp_path):
    klines = hourly.tail(24)
    frame = pandas_frame(klines, names=("open", "high", "low", "close", "volume"))
    frame.index.name = "timestamp"
    path = tmp_path / "plain.csv"
    frame.to_csv(path)
    read = read_kline_file(path)
    assert read.format == "plain_ohlcv"
    assert read.klines.select(COLS).equals(klines.select(COLS))


def test_pandas_row_index_beside_a_timestamp_column_is_ignored(hourly, tmp_path):
    klines = hourly.tail(24)
    frame = pandas_frame(klines, names=("open", "high", "low", "close", "volume"))
    frame.index.name = "timestamp"
    path = tmp_path / "reset.csv"
    frame.reset_index().to_csv(path)  # writes ",timestamp,open,..." with a 0, 1, 2, ... row index first
    read = read_kline_file(path)
    assert read.format == "plain_ohlcv"
    assert "ignored ['']" in read.description
    assert read.klines.select(COLS).equals(klines.select(COLS))


def test_new_york_hourly_times_with_changing_offsets_are_converted_to_utc(hourly, tmp_path):
    # 2021-03-14 is the US DST change: the file's offsets go from -05:00 to -04:00 in the middle
    klines = hourly.filter(pl.col("open_time").is_between(utc(2021, 3, 13), utc(2021, 3, 16)))
    frame = pandas_frame(klines)
    frame.index = frame.index.tz_convert("America/New_York")
    path = tmp_path / "ny.csv"
    frame.to_csv(path)
    text = path.read_text()
    assert "-05:00," in text and "-04:00," in text
    assert read_kline_csv(path).select(COLS).equals(klines.select(COLS))


def test_yfinance_download_header_rows_are_folded(daily, tmp_path):
    klines = daily.tail(30)
    frame = pandas_frame(klines, names=("Open", "High", "Low", "Close", "Volume"))
    frame.index = frame.index.tz_localize(None)
    frame.index.name = "Date"
    frame.columns = pd.MultiIndex.from_product([frame.columns, ["BTC-USD"]], names=["Price", "Ticker"])
    path = tmp_path / "yf.csv"
    frame.to_csv(path)
    assert path.read_text().splitlines()[:3] == [
        "Price,Open,High,Low,Close,Volume",
        "Ticker,BTC-USD,BTC-USD,BTC-USD,BTC-USD,BTC-USD",
        "Date,,,,,",
    ]
    read = read_kline_file(path)
    assert read.format == "yfinance"
    assert read.klines.select(COLS).equals(klines.select(COLS))


def test_daily_bars_without_weekends_load_and_report_calendar_gaps(daily, tmp_path):
    # stock-style daily bars at New York midnight, across the 2021-03-14 DST change: dates stay dates
    klines = weekdays_only(daily.filter(pl.col("open_time").is_between(utc(2021, 2, 1), utc(2021, 4, 30))))
    frame = pandas_frame(klines)
    frame.index = frame.index.tz_localize(None).tz_localize("America/New_York")
    frame.index.name = "Date"
    path = tmp_path / "daily.csv"
    frame.to_csv(path)
    assert "2021-03-12 00:00:00-05:00," in path.read_text() and "2021-03-15 00:00:00-04:00," in path.read_text()
    raw = read_kline_csv(path)
    assert raw.select(COLS).equals(klines.select(COLS))
    clean, report = clean_klines(raw, "1d")
    weekends = 12  # 2021-02-01 (Mon) … 2021-04-29 (Thu)
    assert (report.gaps, report.calendar_gaps, report.unexpected_gaps) == (weekends, weekends, 0)
    assert (report.missing_candles, report.calendar_missing_candles) == (2 * weekends, 2 * weekends)
    assert clean.height == klines.height and report.bad_ticks == 0


def test_midweek_hole_in_daily_bars_is_an_unexpected_gap(daily):
    klines = weekdays_only(daily.filter(pl.col("open_time").is_between(utc(2021, 2, 1), utc(2021, 3, 1))))
    holed = klines.filter(pl.col("open_time") != utc(2021, 2, 17))  # a Wednesday
    _, report = clean_klines(holed, "1d")
    assert (report.calendar_gaps, report.unexpected_gaps, report.unexpected_missing_candles) == (4, 1, 1)


def test_daily_stock_bars_opening_away_from_the_last_close_are_not_bad_ticks(daily):
    # a market that closes every night opens where the news moved it; the Binance open = last close rule is off
    klines = weekdays_only(daily.filter(pl.col("open_time").is_between(utc(2021, 2, 1), utc(2021, 3, 1))))
    tuesday = pl.col("open_time") == utc(2021, 2, 9)
    gapped = klines.with_columns(
        pl.when(tuesday).then(pl.col("open") * 1.08).otherwise(pl.col("open")).alias("open"),
    ).with_columns(pl.max_horizontal("high", "open").alias("high"))
    _, report = clean_klines(gapped, "1d")
    assert report.bad_ticks == 0 and report.calendar_gaps == 4


def test_forex_style_hourly_weekends_and_stock_nights_are_calendar_gaps(hourly):
    span = hourly.filter(pl.col("open_time").is_between(utc(2021, 3, 1), utc(2021, 3, 29)))
    hour, weekday = pl.col("open_time").dt.hour(), pl.col("open_time").dt.weekday()
    # forex: closed from Friday 22:00 to Sunday 22:00 UTC
    forex = span.filter(~(((weekday == 5) & (hour >= 22)) | (weekday == 6) | ((weekday == 7) & (hour < 22))))
    _, report = clean_klines(forex, "1h")
    assert (report.gaps, report.calendar_gaps, report.calendar_missing_candles) == (4, 4, 4 * 48)
    # stocks: 14:00–20:00 UTC on weekdays, and one outage mid-session on Wednesday 2021-03-10
    stocks = span.filter((weekday <= 5) & hour.is_between(14, 20))
    outage = pl.col("open_time").is_between(utc(2021, 3, 10, 16), utc(2021, 3, 10, 17))
    _, report = clean_klines(stocks.filter(~outage), "1h")
    assert report.unexpected_gaps == 1 and report.unexpected_missing_candles == 2
    assert report.calendar_gaps == report.gaps - 1 == 19  # 3 weekends, 16 nights


def test_crypto_outages_in_the_real_sample_are_unexpected_gaps(hourly):
    _, report = clean_klines(hourly, "1h")
    assert report.gaps > 0 and report.unexpected_gaps == report.gaps and report.calendar_gaps == 0


def test_missing_columns_are_named_with_the_columns_found(hourly, tmp_path):
    path = tmp_path / "no_close.csv"
    pandas_frame(hourly.tail(5)).drop(columns=["Close"]).to_csv(path)
    with pytest.raises(
        DataError, match=r"missing column\(s\) \['close'\].*found \['', 'Open', 'High', 'Low', 'Volume'\]"
    ):
        read_kline_csv(path)


def test_header_without_a_time_column_names_it_as_missing(tmp_path):
    path = tmp_path / "no_time.csv"
    path.write_text("symbol,Open,High,Low,Close\nBTCUSDT,1,2,0.5,1.5\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['a time column', 'volume'\]"):
        read_kline_csv(path)


def test_headerless_file_that_is_not_the_binance_archive_asks_for_a_header(tmp_path):
    path = tmp_path / "bare.csv"
    path.write_text("1614556800000,45134.11,46000,44800,45900,1234.5\n")
    with pytest.raises(DataError, match=r"rows need 12 columns, found 6; give the file a header"):
        read_kline_csv(path)


def test_the_format_found_is_logged(hourly, tmp_path, caplog):
    path = tmp_path / "btc.csv"
    pandas_frame(hourly.tail(3)).to_csv(path)
    with caplog.at_level(logging.INFO, logger="cse_models.data.csv_archive"):
        read_kline_csv(path)
    assert "3 rows read as pandas/yfinance date-index CSV" in caplog.text


def test_csv_archive_source_serves_a_pandas_file(hourly, tmp_path):
    pandas_frame(hourly.tail(10)).to_csv(tmp_path / "BTCUSDT-1h.csv")
    fetched = CsvArchiveSource(tmp_path, pattern="{symbol}-{interval}.csv").fetch("BTCUSDT", "1h", None, None)
    assert fetched.select(COLS).equals(hourly.tail(10).select(COLS))


def test_cli_clean_reads_a_pandas_daily_file_and_names_its_format(daily, tmp_path):
    path = tmp_path / "daily.csv"
    frame = pandas_frame(weekdays_only(daily.tail(60)))
    frame.index.name = "Date"
    frame.to_csv(path)
    command = [sys.executable, "-m", "cse_models.cli", "clean", "--csv", str(path), "--interval", "1d"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "rows read as pandas/yfinance date-index CSV (time column 'Date')" in result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "pandas_date_index"
    assert report["calendar_gaps"] == report["gaps"] > 0 and report["unexpected_gaps"] == 0
