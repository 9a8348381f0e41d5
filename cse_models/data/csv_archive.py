"""Reading kline CSVs as they are found in the wild, into the canonical table.

Three formats:
- CryptoDataDownload (`unix,date,symbol,open,high,low,close,Volume X,Volume USDT,tradecount`):
  an optional URL banner line, newest row first, `unix` in seconds *or* milliseconds row by row,
  text dates in two styles ("2021-06-10 00:00:00", "2017-08-17 06-AM").
- Binance public archive (data.binance.vision): 12 columns, no header, open_time in ms before
  2025-01-01 and in µs from then on. Newer archive files carry an `open_time,...,ignore` header line.
- Plain OHLCV (`timestamp,open,high,low,close,volume`, any column order, extra columns ignored): the time
  column is a unix time in s/ms/µs or ISO-8601 text (naive text is read as UTC).

The unit of every timestamp is decided per row from its magnitude, and where a text date exists it
must agree with that decision: a file where they disagree raises instead of being guessed wrong.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl

from cse_models.data.schema import conform
from cse_models.errors import DataError

ARCHIVE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
    "ignore",
)
_CDD_PRICE = ("open", "high", "low", "close")
PLAIN_TIME_COLUMNS = ("timestamp", "open_time", "time", "date", "datetime")
# Epoch magnitudes: seconds < 1e11 (year 5138), ms < 1e14, µs < 1e17 — unambiguous for any date after 1973.
_UNIT_BOUNDS = ((1e11, 1_000.0), (1e14, 1.0), (1e17, 1e-3))


def epoch_to_ms(values: np.ndarray, *, origin: str) -> np.ndarray:
    """Unix timestamps in s, ms or µs (decided per value) → int64 milliseconds."""
    values = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 1e8))
    if bad.size:
        raise DataError(f"{origin}: timestamp at row {int(bad[0])} is not a unix time ({values[bad[0]]!r})")
    out = np.empty(values.shape, dtype=np.int64)
    done = np.zeros(values.shape, dtype=bool)
    for bound, factor in _UNIT_BOUNDS:
        sel = ~done & (values < bound)
        # µs → ms truncates, as Binance's own ms close times do (…59.999999 s is …59.999 s, not the next candle)
        ms = np.floor(values[sel] / 1_000.0) if factor < 1 else np.rint(values[sel] * factor)
        out[sel] = ms.astype(np.int64)
        done |= sel
    if not done.all():
        row = int(np.flatnonzero(~done)[0])
        raise DataError(f"{origin}: timestamp at row {row} is too large for s/ms/µs ({values[row]!r})")
    return out


def read_kline_csv(path: str | Path) -> pl.DataFrame:
    """Read a CryptoDataDownload, Binance-archive or plain OHLCV CSV file, detecting the format from its content."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    first_data = _first_content_line(lines, path)
    head = lines[first_data].split(",")[0].strip().lower()
    header = [c.strip().lower() for c in lines[first_data].split(",")]
    if head == "unix":
        df = parse_cryptodatadownload("\n".join(lines[first_data:]), origin=str(path))
    elif head in PLAIN_TIME_COLUMNS and "close_time" not in header:
        df = parse_plain_ohlcv("\n".join(lines[first_data:]), origin=str(path))
    else:
        if head in ("open_time", "timestamp"):
            first_data += 1  # newer archive files and plain exports carry a header line
        df = parse_binance_archive("\n".join(lines[first_data:]), origin=str(path))
    check_file_order(df, origin=str(path))
    return df


def check_file_order(df: pl.DataFrame, *, origin: str) -> None:
    """A file lists candles newest-first or oldest-first (repeats allowed); a row that breaks its file's
    direction means the file is damaged, and cleaning must not paper over it by sorting."""
    diffs = np.diff(df.get_column("open_time").dt.epoch("ms").to_numpy())
    descending = diffs.size and np.count_nonzero(diffs < 0) > np.count_nonzero(diffs > 0)
    wrong = np.flatnonzero(diffs > 0 if descending else diffs < 0)
    if wrong.size:
        row = int(wrong[0]) + 1
        order = "newest-first" if descending else "oldest-first"
        raise DataError(f"{origin}: timestamps out of order at row {row} ({df['open_time'][row]}); the file is {order}")


def _first_content_line(lines: list[str], path: Path) -> int:
    """Skip the banner ("https://www.CryptoDataDownload.com") and blank lines."""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.lower().startswith(("http", "www.")):
            return i
    raise DataError(f"CSV file {path} has no data rows")


def _read_strings(text: str, *, has_header: bool, names: list[str] | None, origin: str) -> pl.DataFrame:
    try:
        return pl.read_csv(
            io.StringIO(text),
            has_header=has_header,
            new_columns=names,
            infer_schema=False,
            null_values=["NULL", ""],
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{origin}: not a readable CSV ({exc})") from exc


def _to_float(df: pl.DataFrame, column: str, *, origin: str) -> pl.Series:
    """Strict float parsing: a non-numeric cell raises naming its row and column."""
    raw = df.get_column(column)
    parsed = raw.cast(pl.Float64, strict=False)
    bad = (parsed.is_null() & raw.is_not_null()).arg_true()
    if bad.len():
        row = int(bad[0])
        raise DataError(f"{origin}: column {column!r} row {row} is not a number ({raw[row]!r})")
    return parsed


def _require(df: pl.DataFrame, columns: tuple[str, ...] | list[str], origin: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{origin}: missing column(s) {missing}; found {df.columns}")


def parse_cryptodatadownload(text: str, *, origin: str = "csv") -> pl.DataFrame:
    """CryptoDataDownload body (header line first) → canonical table, in file order."""
    df = _read_strings(text, has_header=True, names=None, origin=origin)
    df = df.rename({c: c.strip() for c in df.columns})
    volume_cols = [c for c in df.columns if c.lower().startswith("volume")]
    _require(df, ["unix", "date", *_CDD_PRICE], origin)
    if len(volume_cols) < 2:
        raise DataError(f"{origin}: expected base and quote volume columns ('Volume X', 'Volume USDT')")
    quote_col = next((c for c in volume_cols if c.lower().endswith(("usdt", "usd", "busd"))), volume_cols[-1])
    base_col = next(c for c in volume_cols if c != quote_col)
    open_ms = epoch_to_ms(_to_float(df, "unix", origin=origin).to_numpy(), origin=origin)
    _check_text_dates(df.get_column("date"), open_ms, origin)
    trades = df.get_column("tradecount").cast(pl.Float64, strict=False) if "tradecount" in df.columns else None
    out = pl.DataFrame(
        {
            "open_time": pl.Series(open_ms).cast(pl.Datetime("ms", "UTC")),
            **{c: _to_float(df, c, origin=origin) for c in _CDD_PRICE},
            "volume": _to_float(df, base_col, origin=origin),
            "quote_volume": _to_float(df, quote_col, origin=origin),
            "trades": trades.cast(pl.Int64) if trades is not None else None,
        }
    )
    return conform(out)


_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %I:%M %p", "%Y-%m-%d %H:%M")


def _check_text_dates(dates: pl.Series, open_ms: np.ndarray, origin: str) -> None:
    """Where the text date parses, it must name the same day as the unix column.

    The check guards the unit decision (s vs ms vs µs is off by years), not the hour: the text dates of
    CryptoDataDownload's 2017 rows are in US Eastern time, so they differ from UTC by a few hours.
    """
    normalized = dates.str.replace(r"^(\d{4}-\d{2}-\d{2}) (\d{2})-([AP]M)$", "$1 $2:00 $3")
    parsed = pl.Series("date", [None] * len(dates), dtype=pl.Datetime("ms"))
    for fmt in _DATE_FORMATS:
        parsed = parsed.fill_null(normalized.str.strptime(pl.Datetime("ms"), fmt, strict=False))
    text_ms = parsed.dt.epoch("ms").fill_null(pl.Series(open_ms)).to_numpy()
    wrong = np.flatnonzero(np.abs(text_ms - open_ms) > 86_400_000)
    if wrong.size:
        row = int(wrong[0])
        raise DataError(f"{origin}: row {row} unix time {int(open_ms[row])} ms disagrees with its date {dates[row]!r}")


def parse_binance_archive(text: str, *, origin: str = "csv") -> pl.DataFrame:
    """Binance public-archive body (no header, 12 columns) → canonical table, in file order."""
    df = _read_strings(text, has_header=False, names=None, origin=origin)
    if df.width < 11:
        raise DataError(f"{origin}: Binance archive rows need 12 columns, found {df.width}")
    df = df.rename(dict(zip(df.columns, ARCHIVE_COLUMNS, strict=False)))
    open_ms = epoch_to_ms(_to_float(df, "open_time", origin=origin).to_numpy(), origin=origin)
    close_ms = epoch_to_ms(_to_float(df, "close_time", origin=origin).to_numpy(), origin=origin)
    out = pl.DataFrame(
        {
            "open_time": pl.Series(open_ms).cast(pl.Datetime("ms", "UTC")),
            **{c: _to_float(df, c, origin=origin) for c in ("open", "high", "low", "close", "volume")},
            "close_time": pl.Series(close_ms).cast(pl.Datetime("ms", "UTC")),
            "quote_volume": _to_float(df, "quote_volume", origin=origin),
            "trades": _to_float(df, "trades", origin=origin).cast(pl.Int64),
            "taker_buy_base": _to_float(df, "taker_buy_base", origin=origin),
            "taker_buy_quote": _to_float(df, "taker_buy_quote", origin=origin),
        }
    )
    return conform(out)


def parse_plain_ohlcv(text: str, *, origin: str = "csv") -> pl.DataFrame:
    """Plain OHLCV body (header line first: a time column, open, high, low, close, volume) → canonical table.

    The time column is the first header named one of PLAIN_TIME_COLUMNS; numbers are unix times (unit
    decided per row, as everywhere here), text is ISO-8601 — with an offset it is converted, without one it
    is taken as UTC.
    """
    df = _read_strings(text, has_header=True, names=None, origin=origin)
    df = df.rename({c: c.strip().lower() for c in df.columns})
    time_col = next(c for c in df.columns if c in PLAIN_TIME_COLUMNS)
    _require(df, ["open", "high", "low", "close", "volume"], origin)
    raw_time = df.get_column(time_col)
    if raw_time.null_count():
        raise DataError(f"{origin}: column {time_col!r} row {int(raw_time.is_null().arg_true()[0])} is empty")
    numeric = raw_time.cast(pl.Float64, strict=False)
    if numeric.null_count() == 0:
        open_ms = epoch_to_ms(numeric.to_numpy(), origin=origin)
    else:
        open_ms = _iso_to_ms(raw_time, time_col, origin)
    optional = {name: _to_float(df, name, origin=origin) for name in ("quote_volume", "trades") if name in df.columns}
    if "trades" in optional:
        optional["trades"] = optional["trades"].cast(pl.Int64)
    out = pl.DataFrame(
        {
            "open_time": pl.Series(open_ms).cast(pl.Datetime("ms", "UTC")),
            **{c: _to_float(df, c, origin=origin) for c in ("open", "high", "low", "close", "volume")},
            **optional,
        }
    )
    return conform(out)


def _iso_to_ms(raw: pl.Series, column: str, origin: str) -> np.ndarray:
    parsed = raw.str.strip_chars().str.to_datetime(time_unit="ms", strict=False)
    bad = parsed.is_null().arg_true()
    if bad.len():
        row = int(bad[0])
        raise DataError(f"{origin}: column {column!r} row {row} is neither a unix time nor ISO-8601 ({raw[row]!r})")
    if parsed.dtype.time_zone is None:  # type: ignore[union-attr]
        parsed = parsed.dt.replace_time_zone("UTC")
    return parsed.dt.convert_time_zone("UTC").dt.epoch("ms").to_numpy()
