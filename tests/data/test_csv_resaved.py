"""CryptoDataDownload exports after a spreadsheet re-saved them (../shared/data/excel-resaved, README there):
`unix` in scientific notation with its precision lost, `dd-mm-yy` dates and a separate `time` column. The
open time comes from date + time where unix is imprecise, duplicated hours go to cleaning, and the bundled
sample serves three such series."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from prerequisites import real_data_file

from cse_models.data.clean import clean_klines
from cse_models.data.csv_archive import read_kline_file
from cse_models.data.file_sources import SAMPLE_DIR, SAMPLE_RESAVED_SYMBOLS, SampleSource
from cse_models.errors import DataError

HEADER = "unix,date,time,symbol,open,high,low,close,Volume LTC,Volume USDT,tradecount"
HOUR = timedelta(hours=1)
RESAVED = ["LTCUSDT", "DOTUSDT", "SOLUSDT"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(tmp_path: Path, lines: list[str], name: str = "Binance_LTCUSDT_1h.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def resaved_row(open_time: datetime, *, digits: int, date_format: str = "%d-%m-%y", price: float = 80.0) -> str:
    """One row as the spreadsheet writes it: unix in ms rounded to `digits` significant digits."""
    unix = f"{open_time.timestamp() * 1000:.{digits - 1}E}"
    day, clock = open_time.strftime(date_format), open_time.strftime("%H:%M:%S")
    return f"{unix},{day},{clock},LTC/USDT,{price},{price + 1},{price - 1},{price + 0.5},100.5,8040.2,120"


def resaved_lines(newest: datetime, hours: int, *, digits: int = 4, date_format: str = "%d-%m-%y") -> list[str]:
    """A re-saved file, newest first, `hours` consecutive candles ending at `newest`."""
    times = [newest - k * HOUR for k in range(hours)]
    return [
        HEADER,
        *(resaved_row(t, digits=digits, date_format=date_format, price=80.0 + k) for k, t in enumerate(times)),
    ]


# --- the real files ---


def real_rows(symbol: str) -> list[dict[str, str]]:
    with real_data_file(f"excel-resaved/Binance_{symbol}_1h.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def text_hour(row: dict[str, str]) -> datetime:
    return datetime.strptime(f"{row['date']} {row['time']}", "%d-%m-%y %H:%M:%S").replace(tzinfo=UTC)


def exact_hour(row: dict[str, str]) -> datetime:
    """The hour of a row, read independently of the reader: the unix cell where it is written in full
    (seconds), else date + time."""
    if "E" in row["unix"]:
        return text_hour(row)
    return datetime.fromtimestamp(int(row["unix"]), tz=UTC)


@pytest.mark.parametrize("symbol", RESAVED)
def test_real_resaved_file_reads_every_row_with_its_format_named(symbol):
    path = real_data_file(f"excel-resaved/Binance_{symbol}_1h.csv")
    read = read_kline_file(path)
    rows = real_rows(symbol)
    assert read.format == "cryptodatadownload_resaved"
    assert read.description.startswith(
        "CryptoDataDownload re-saved by a spreadsheet (unix in scientific notation, precision lost in "
    )
    assert "open time read from dd-mm-yy date + time" in read.description
    assert read.klines.height == len(rows)
    assert read.klines["open_time"].to_list() == [exact_hour(r) for r in rows]


@pytest.mark.parametrize("symbol", ["DOTUSDT", "SOLUSDT"])
def test_real_dot_and_sol_clean_with_no_duplicates_and_two_gaps(symbol):
    read = read_kline_file(real_data_file(f"excel-resaved/Binance_{symbol}_1h.csv"))
    _, report = clean_klines(read.klines, "1h")
    assert report.duplicates_removed == 0
    assert report.gaps == 2
    assert report.rows_out == read.klines.height - report.bad_ticks


def test_real_ltc_duplicated_hours_pair_a_seconds_row_with_a_scientific_one_and_are_cleaned_away():
    rows = real_rows("LTCUSDT")
    by_hour = Counter(exact_hour(r) for r in rows)
    duplicated = {hour for hour, n in by_hour.items() if n > 1}
    assert duplicated and max(by_hour.values()) == 2
    kinds = Counter(("E" in r["unix"], r["tradecount"] == "NULL") for r in rows if exact_hour(r) in duplicated)
    assert kinds == {(True, False): len(duplicated), (False, True): len(duplicated)}  # two exports merged
    read = read_kline_file(real_data_file("excel-resaved/Binance_LTCUSDT_1h.csv"))
    assert "rows from their exact unix" in read.description
    clean, report = clean_klines(read.klines, "1h")
    assert report.duplicates_removed == len(duplicated)
    assert 0 < report.duplicates_conflicting < len(duplicated)  # prices differ in some, not all
    assert clean["open_time"].is_sorted() and clean["open_time"].n_unique() == clean.height


def test_real_ltc_seconds_rows_keep_a_twelve_hour_time_so_date_time_alone_misreads_them():
    """Why the reader keeps an exact unix: the rows in seconds carry their time on a 12-hour clock with the
    AM/PM lost. Read from date + time alone they give the data README's 14,201 "duplicated hours", most of
    them an afternoon candle folded onto its morning one."""
    rows = real_rows("LTCUSDT")
    seconds = [r for r in rows if "E" not in r["unix"]]
    assert {int(r["time"][:2]) for r in seconds} == set(range(1, 13))
    assert all(text_hour(r).hour % 12 == exact_hour(r).hour % 12 for r in seconds)
    assert len(rows) - len({text_hour(r) for r in rows}) == 14_201
    assert len(rows) - len({exact_hour(r) for r in rows}) < 14_201


@pytest.mark.parametrize("symbol", ["LTCUSDT", "DOTUSDT"])
def test_cli_clean_prints_the_format_and_the_duplicate_and_gap_counts(symbol):
    path = real_data_file(f"excel-resaved/Binance_{symbol}_1h.csv")
    command = [sys.executable, "-m", "cse_models.cli", "clean", "--csv", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "rows read as CryptoDataDownload re-saved by a spreadsheet (unix in scientific notation" in result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "cryptodatadownload_resaved"
    assert {"duplicates_removed", "duplicates_conflicting", "gaps", "missing_candles"} <= report.keys()


# --- date order, worked out from the data ---


@pytest.mark.parametrize(("date_format", "label"), [("%d-%m-%y", "dd-mm-yy"), ("%m-%d-%y", "mm-dd-yy")])
def test_date_order_is_read_from_days_past_twelve(tmp_path, date_format, label):
    newest = utc(2021, 12, 14, 5)
    read = read_kline_file(write(tmp_path, resaved_lines(newest, 48, digits=3, date_format=date_format)))
    assert f"open time read from {label} date + time" in read.description
    assert read.klines["open_time"].to_list() == [newest - k * HOUR for k in range(48)]


def test_dates_that_fit_both_orders_are_told_apart_by_a_precise_enough_unix(tmp_path):
    newest = utc(2021, 5, 6, 23)  # 06-05-21 and 05-06-21 are both dates; 7 digits of unix are ±83 min
    read = read_kline_file(write(tmp_path, resaved_lines(newest, 30, digits=7, date_format="%m-%d-%y")))
    assert "mm-dd-yy date + time" in read.description
    assert read.klines["open_time"][0] == newest


def test_ambiguous_date_order_is_refused(tmp_path):
    lines = resaved_lines(utc(2021, 5, 6, 23), 30, digits=2)  # 1.6E+12: ±1.6 years
    with pytest.raises(DataError, match=r"date column is ambiguous: it reads as dd-mm-yy and as mm-dd-yy"):
        read_kline_file(write(tmp_path, lines))


def test_dates_that_name_no_row_s_day_under_any_order_are_refused(tmp_path):
    lines = [line.replace("-12-21,", "-12-19,") for line in resaved_lines(utc(2021, 12, 14, 5), 3, digits=7)]
    with pytest.raises(DataError, match=r"the date column fits no order among \['dd-mm-yy', 'mm-dd-yy', 'yy-mm-dd'\]"):
        read_kline_file(write(tmp_path, lines))


def test_unparseable_date_in_an_imprecise_row_names_the_row(tmp_path):
    lines = resaved_lines(utc(2021, 12, 14, 5), 3, digits=7)
    lines[2] = lines[2].replace("14-12-21", "14-31-21")  # neither day-month nor month-day
    with pytest.raises(DataError, match=r"row 1 has no usable open time: .*\('14-31-21' '04:00:00'\) do not parse"):
        read_kline_file(write(tmp_path, lines))


# --- where unix is imprecise and the text cannot stand in ---


def test_imprecise_unix_without_date_and_time_columns_names_the_row(tmp_path):
    header = HEADER.replace(",time,", ",")
    rows = [
        "1639458000000,2021-12-14 05:00:00,LTC/USDT,80,81,79,80.5,100.5,8040.2,120",
        "1.639E+12,2021-12-14 04:00:00,LTC/USDT,81,82,80,81.5,100.5,8040.2,120",
    ]
    with pytest.raises(
        DataError, match=r"row 1 has no usable open time: its unix '1\.639E\+12' has lost its precision"
    ):
        read_kline_file(write(tmp_path, [header, *rows]))


def test_imprecise_row_with_an_empty_time_names_the_row(tmp_path):
    lines = resaved_lines(utc(2021, 12, 14, 5), 4)
    lines[3] = lines[3].replace(",03:00:00,", ",,")
    with pytest.raises(DataError, match=r"row 2 has no usable open time: its unix '1\.639E\+12'.*do not parse"):
        read_kline_file(write(tmp_path, lines))


def test_date_time_disagreeing_with_its_unix_beyond_the_rounding_is_refused(tmp_path):
    lines = resaved_lines(utc(2021, 12, 14, 5), 4, digits=7)
    lines[2] = lines[2].replace("14-12-21", "11-12-21")  # three days off, the unix ±83 min
    with pytest.raises(DataError, match=r"row 1 date \+ time '11-12-21' '04:00:00' disagrees with its unix"):
        read_kline_file(write(tmp_path, lines))


def test_twelve_hour_clock_without_am_pm_is_refused_where_it_must_give_the_hour(tmp_path):
    lines = resaved_lines(utc(2021, 12, 14, 5), 72)
    twelve = [lines[0]]
    for line in lines[1:]:
        hour = int(line.split(",")[2][:2])
        twelve.append(line.replace(f",{hour:02d}:00:00,", f",{(hour - 1) % 12 + 1:02d}:00:00,"))
    with pytest.raises(DataError, match="12-hour clock that lost its AM/PM"):
        read_kline_file(write(tmp_path, twelve))


def test_plain_unix_values_that_collide_are_read_from_date_and_time(tmp_path):
    newest = utc(2021, 12, 14, 5)
    lines = resaved_lines(newest, 24)
    full = [lines[0]] + [f"{float(line.split(',')[0]):.0f}{line[line.index(',') :]}" for line in lines[1:]]
    assert full[1].startswith("1639000000000,")  # the rounded value written in full
    read = read_kline_file(write(tmp_path, full))
    assert "unix values collide, precision lost in 24 rows" in read.description
    assert read.klines["open_time"].to_list() == [newest - k * HOUR for k in range(24)]


def test_truly_out_of_order_resaved_file_is_still_refused(tmp_path):
    lines = resaved_lines(utc(2021, 12, 14, 5), 10)
    lines[4], lines[7] = lines[7], lines[4]
    with pytest.raises(DataError, match=r"out of order at row 4 \(2021-12-14 01:00:00"):
        read_kline_file(write(tmp_path, lines))


def test_merged_duplicate_hours_read_and_go_to_cleaning(tmp_path):
    lines = resaved_lines(utc(2021, 12, 14, 5), 6)
    seconds = f"{int(utc(2021, 12, 14, 3).timestamp())},14-12-21,03:00:00,LTC/USDT,82.01,83,81,82.5,100.5,8040.2,NULL"
    read = read_kline_file(write(tmp_path, [*lines[:3], seconds, *lines[3:]]))
    clean, report = clean_klines(read.klines, "1h")
    assert report.duplicates_removed == 1 and report.duplicates_conflicting == 1
    assert clean.filter(clean["open_time"] == utc(2021, 12, 14, 3))["trades"].to_list() == [120]


# --- the bundled sample ---


@pytest.mark.parametrize("symbol", SAMPLE_RESAVED_SYMBOLS)
def test_sample_serves_the_resaved_series_as_clean_hourly_klines(symbol):
    path = SAMPLE_DIR / f"Binance_{symbol}_1h.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    raw = SampleSource().fetch(symbol, "1h", None, None)
    assert raw.height == len(rows)
    assert raw["open_time"].max() == text_hour(rows[0]) and raw["open_time"].min() == text_hour(rows[-1])
    clean, report = clean_klines(raw, "1h")
    assert report.duplicates_removed == 0 and report.bad_ticks == 0
    assert clean["open_time"].max() - clean["open_time"].min() <= timedelta(days=366)
    steps = np.diff(clean["open_time"].dt.epoch("ms").to_numpy())
    assert (steps > 0).all() and (steps % 3_600_000 == 0).all()


@pytest.mark.parametrize("symbol", SAMPLE_RESAVED_SYMBOLS)
def test_sample_files_are_verbatim_newest_rows_of_the_resaved_exports(symbol):
    sample = (SAMPLE_DIR / f"Binance_{symbol}_1h.csv").read_text().splitlines()
    real = real_data_file(f"excel-resaved/Binance_{symbol}_1h.csv").read_text().splitlines()
    assert sample == real[: len(sample)]
