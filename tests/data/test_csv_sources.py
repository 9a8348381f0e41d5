"""Reading kline CSVs as found in the wild: CryptoDataDownload (the real files), the Binance public archive
(ms before 2025, µs after), damaged files, and the bundled sample behind relative time ranges."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from prerequisites import real_data_file

from cse_models.data.clean import clean_klines
from cse_models.data.csv_archive import read_kline_csv
from cse_models.data.file_sources import SAMPLE_SYMBOLS, CsvArchiveSource, SampleSource
from cse_models.data.schema import KLINE_SCHEMA
from cse_models.data.sources import TimeRange
from cse_models.errors import ConfigError, DataError, SourceError

CDD_HEADER = "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount"
# Three real consecutive rows of the BTC file (newest first), one in each of CryptoDataDownload's styles.
CDD_ROWS = [
    "1605859200000,2020-11-20 08:00:00,BTC/USDT,18210.00000000,18320.00000000,18143.00000000,18304.63000000,"
    "3961.96108900,72339863.47191626,65929",
    "1605855600000,2020-11-20 07:00:00,BTC/USDT,18164.79000000,18404.68000000,18089.71000000,18212.00000000,"
    "6097.86638000,111204907.80372713,93118",
    "1605852000.0,2020-11-20 06-AM,BTC/USDT,18129.99,18176.01,18060,18164.8,2523.08,45718387.34,NULL",
]
ARCHIVE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def archive_row(open_ms: int, unit: int, price: float) -> str:
    """One Binance public-archive row (12 columns); `unit` 1 = ms, 1000 = µs."""
    close_ms = open_ms + 3_600_000 - 1
    return (
        f"{open_ms * unit},{price:.8f},{price + 120:.8f},{price - 80:.8f},{price + 40:.8f},512.34567000,"
        f"{close_ms * unit + (unit - 1)},{512.34567 * price:.8f},48211,260.11223000,{260.11223 * price:.8f},0"
    )


def archive_year_end_lines() -> list[str]:
    """2024-12-31 22:00 and 23:00 in ms, 2025-01-01 00:00 and 01:00 in µs, as Binance switched units."""
    start = int(utc(2024, 12, 31, 22).timestamp() * 1000)
    return [archive_row(start + i * 3_600_000, 1000 if i >= 2 else 1, 93_500.0 + 10 * i) for i in range(4)]


# --- CryptoDataDownload, the real file ---


def test_real_cryptodatadownload_file_parses_every_row_newest_first():
    raw = read_kline_csv(real_data_file("Binance_BTCUSDT_1h.csv"))
    assert raw.height == 36062
    assert raw.schema == pl.Schema(KLINE_SCHEMA)
    assert raw["open_time"][0] == utc(2021, 6, 10, 0)
    assert raw["open_time"][-1] == utc(2017, 8, 17, 4)
    # newest first: never increasing (duplicates repeat a time)
    assert (np.diff(raw["open_time"].dt.epoch("ms").to_numpy()) <= 0).all()


def test_real_file_ms_and_seconds_rows_decode_to_the_same_utc_hour():
    raw = read_kline_csv(real_data_file("Binance_BTCUSDT_1h.csv"))
    # file lines 4831/4832: "1605855600000,2020-11-20 07:00:00,..." and "1605855600.0,2020-11-20 07-AM,..."
    ms_row, s_row = raw[4829], raw[4830]
    assert ms_row["open_time"][0] == utc(2020, 11, 20, 7)
    assert ms_row["close"][0] == 18212.0 and ms_row["trades"][0] == 93118
    assert s_row["open_time"][0] == utc(2020, 11, 20, 7)
    assert s_row["close"][0] == 18143.03 and s_row["trades"][0] is None
    # the oldest row, seconds with a 12-hour text date: "1502942400.0,2017-08-17 04-AM,..."
    assert raw["open_time"][-1] == utc(2017, 8, 17, 4)
    assert raw["open"][-1] == 16199.91


def test_real_eth_file_parses():
    raw = read_kline_csv(real_data_file("Binance_ETHUSDT_1h.csv"))
    assert raw.height > 30_000
    assert raw["open_time"].max() == utc(2021, 6, 10, 0)
    assert raw["open_time"].min() == utc(2017, 8, 17, 4)


def test_cryptodatadownload_banner_line_is_skipped(tmp_path):
    path = write(tmp_path, "Binance_BTCUSDT_1h.csv", ["https://www.CryptoDataDownload.com", CDD_HEADER, *CDD_ROWS])
    raw = read_kline_csv(path)
    assert raw["open_time"].to_list() == [utc(2020, 11, 20, 8), utc(2020, 11, 20, 7), utc(2020, 11, 20, 6)]
    assert raw["close"].to_list() == [18304.63, 18212.0, 18164.8]
    assert raw["volume"].to_list() == [3961.961089, 6097.86638, 2523.08]
    assert raw["quote_volume"][0] == pytest.approx(72339863.47191626)


# --- Binance public archive ---


def test_archive_without_header_decodes_ms_2024_and_us_2025_rows(tmp_path):
    raw = read_kline_csv(write(tmp_path, "BTCUSDT-1h-2024-12.csv", archive_year_end_lines()))
    assert raw["open_time"].to_list() == [
        utc(2024, 12, 31, 22),
        utc(2024, 12, 31, 23),
        utc(2025, 1, 1, 0),
        utc(2025, 1, 1, 1),
    ]
    assert raw["close_time"][1] == datetime(2024, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert raw["close_time"][2] == datetime(2025, 1, 1, 0, 59, 59, 999000, tzinfo=UTC)  # µs truncated to ms
    assert raw["open"].to_list() == [93500.0, 93510.0, 93520.0, 93530.0]
    assert raw["trades"].to_list() == [48211] * 4
    assert raw["taker_buy_base"][3] == 260.11223


def test_archive_with_header_line_skips_it(tmp_path):
    raw = read_kline_csv(write(tmp_path, "BTCUSDT-1h-2025-01.csv", [ARCHIVE_HEADER, *archive_year_end_lines()]))
    assert raw.height == 4
    assert raw["open_time"][0] == utc(2024, 12, 31, 22)
    assert raw["open_time"][-1] == utc(2025, 1, 1, 1)


def test_archive_row_out_of_order_names_the_row(tmp_path):
    start = int(utc(2024, 3, 1).timestamp() * 1000)
    order = [0, 1, 2, 3, 4, 1, 6, 7]  # row 5 repeats hour 1 in the middle of an ascending file
    lines = [archive_row(start + k * 3_600_000, 1, 60_000.0 + k) for k in order]
    with pytest.raises(DataError, match=r"out of order at row 5 \(2024-03-01 01:00:00") as info:
        read_kline_csv(write(tmp_path, "damaged.csv", lines))
    assert "oldest-first" in str(info.value)


# --- damaged CryptoDataDownload files ---


def test_missing_column_is_named(tmp_path):
    header = CDD_HEADER.replace(",close,", ",")
    rows = [",".join(v for i, v in enumerate(r.split(",")) if i != 6) for r in CDD_ROWS]
    with pytest.raises(DataError, match=r"missing column\(s\) \['close'\]"):
        read_kline_csv(write(tmp_path, "no_close.csv", [header, *rows]))


def test_non_numeric_price_names_row_and_column(tmp_path):
    rows = list(CDD_ROWS)
    cells = rows[1].split(",")
    cells[4] = "n/a"
    rows[1] = ",".join(cells)
    with pytest.raises(DataError, match=r"column 'high' row 1 is not a number \('n/a'\)"):
        read_kline_csv(write(tmp_path, "bad_high.csv", [CDD_HEADER, *rows]))


@pytest.mark.parametrize("token", ["NaN", "inf", "-inf"])
def test_non_finite_price_is_rejected_naming_the_column(tmp_path, token):
    rows = list(CDD_ROWS)
    cells = rows[2].split(",")
    cells[6] = token  # close of the third row
    rows[2] = ",".join(cells)
    # the reader accepts the token as a float; the cleaning step refuses it, naming column and file row
    raw = read_kline_csv(write(tmp_path, "nan_close.csv", [CDD_HEADER, *rows]))
    with pytest.raises(DataError, match=r"column 'close' has 1 non-finite value\(s\), first at row 2"):
        clean_klines(raw, "1h")


@pytest.mark.parametrize(
    "unix",
    [
        "16058520000",  # the seconds value with one digit too many: read as seconds, year 2478
        "160585200000",  # the ms value with one digit missing: read as ms, year 1975
    ],
)
def test_unix_value_disagreeing_with_text_date_is_rejected(tmp_path, unix):
    rows = list(CDD_ROWS)
    rows[2] = unix + rows[2][rows[2].index(",") :]
    with pytest.raises(DataError, match=r"row 2 unix time \d+ ms disagrees with its date '2020-11-20 06-AM'"):
        read_kline_csv(write(tmp_path, "wrong_unit.csv", [CDD_HEADER, *rows]))


def test_eastern_time_text_date_within_a_day_is_accepted(tmp_path):
    # CryptoDataDownload's 2017 text dates are a few hours off UTC; only the unit decision is checked
    rows = list(CDD_ROWS)
    rows[2] = rows[2].replace("2020-11-20 06-AM", "2020-11-20 01-AM")
    assert read_kline_csv(write(tmp_path, "eastern.csv", [CDD_HEADER, *rows]))["open_time"][2] == utc(2020, 11, 20, 6)


def test_csv_archive_source_missing_file_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="no kline file for BTCUSDT 1h"):
        CsvArchiveSource(tmp_path).fetch("BTCUSDT", "1h", None, None)


# --- the bundled sample and time ranges ---


@pytest.mark.parametrize("symbol", SAMPLE_SYMBOLS)
def test_sample_source_loads_about_twelve_months(symbol):
    src = SampleSource()
    raw = src.fetch(symbol, "1h", None, None)
    assert raw["open_time"].min() == utc(2020, 6, 10, 0)
    assert raw["open_time"].max() == utc(2021, 6, 10, 0)
    _, report = clean_klines(raw, "1h")
    assert report.rows_out == 8749  # 365 days + 1 candle, less 12 missing candles
    assert report.missing_candles == 12


def test_sample_source_unknown_symbol_lists_the_bundled_ones():
    with pytest.raises(
        SourceError, match=r"has BTCUSDT, ETHUSDT, LTCUSDT, DOTUSDT, SOLUSDT at 1h only, not XRPUSDT 1h"
    ):
        SampleSource().fetch("XRPUSDT", "1h", None, None)


def test_sample_source_other_interval_is_refused():
    with pytest.raises(SourceError, match="not BTCUSDT 4h"):
        SampleSource().fetch("BTCUSDT", "4h", None, None)


def test_last_5_days_of_the_sample_is_120_candles():
    src = SampleSource()
    start, end = TimeRange(last="last 5 days").resolve(src.anchor("BTCUSDT", "1h"))
    clean, report = clean_klines(src.fetch("BTCUSDT", "1h", start, end), "1h")
    assert report.gaps == 0 and report.duplicates_removed == 0
    assert clean.height == 120
    assert clean["open_time"][0] == utc(2021, 6, 5, 1)
    assert clean["open_time"][-1] == utc(2021, 6, 10, 0)


def test_unknown_relative_range_is_a_config_error():
    with pytest.raises(ConfigError, match="'last fortnight' not understood"):
        TimeRange(last="last fortnight")


def test_explicit_range_without_candles_is_a_data_error():
    rng = TimeRange(start=datetime(2019, 1, 1), end=datetime(2019, 2, 1))
    with pytest.raises(DataError, match="BTCUSDT 1h: no klines between 2019-01-01"):
        SampleSource().fetch("BTCUSDT", "1h", *rng.resolve(utc(2021, 6, 10)))
