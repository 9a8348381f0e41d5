"""Header-led OHLCV CSVs as people write them: plain exports, pandas `df.to_csv()`, yfinance downloads.

Column names are matched case-insensitively after trimming, in any order; extra columns ("Adj Close",
"Dividends", a pandas row index) are ignored and listed, so the caller can say what was left out. The time
column is the first one named like a time (`TIME_COLUMNS`), else an unnamed first column — what pandas
writes for a DatetimeIndex without a name. Times are unix s/ms/µs or ISO-8601 text; see `times_to_ms`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from cse_models.data.csv_cells import epoch_to_ms, read_strings, to_float
from cse_models.data.schema import conform
from cse_models.errors import DataError

TIME_COLUMNS = ("timestamp", "open_time", "open time", "time", "date", "datetime", "date_time", "dt")
# What pandas writes for an index without a name, and again after a read/write round trip.
INDEX_COLUMNS = ("", "unnamed: 0", "index")
OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
OPTIONAL_COLUMNS = ("quote_volume", "trades")
_DATE_INDEX_NAMES = (*INDEX_COLUMNS, "date", "datetime")
# "2024-01-02 00:00:00-05:00" → "2024-01-02 00:00:00": the wall-clock part of an ISO time with an offset.
_OFFSET_RE = r"^(.*\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True)
class OhlcvHeader:
    """Which file column (as written) holds what; `ignored` are the columns nothing reads."""

    time_column: str
    columns: dict[str, str]
    ignored: tuple[str, ...]

    @property
    def is_date_index(self) -> bool:
        """pandas/yfinance style: the dates are the first column, unnamed or called Date/Datetime."""
        return self.time_column.strip().lower() in _DATE_INDEX_NAMES


def match_header(names: list[str], *, origin: str) -> OhlcvHeader:
    """Map a header to the canonical columns, or raise DataError naming what is missing and what was found."""
    by_key: dict[str, str] = {}
    for name in names:
        by_key.setdefault(name.strip().lower(), name)
    time_column = next((by_key[k] for k in TIME_COLUMNS if k in by_key), None)
    if time_column is None and names and names[0].strip().lower() in INDEX_COLUMNS:
        time_column = names[0]
    missing = [c for c in OHLCV_COLUMNS if c not in by_key]
    if time_column is None or missing:
        wanted = missing if time_column is not None else ["a time column", *missing]
        raise DataError(
            f"{origin}: missing column(s) {wanted} (names are case-insensitive; a time column is one of "
            f"{', '.join(TIME_COLUMNS)} or an unnamed first column); found {names}"
        )
    columns = {c: by_key[c] for c in (*OHLCV_COLUMNS, *OPTIONAL_COLUMNS) if c in by_key}
    used = {time_column, *columns.values()}
    return OhlcvHeader(time_column, columns, tuple(n for n in names if n not in used))


def yfinance_header(lines: list[str], *, origin: str) -> list[str] | None:
    """yfinance's `download(...).to_csv()` writes three header rows (Price…, Ticker…, Date,,,); fold them into
    one `Date,Close,High,...` header. None when the file does not start that way."""
    cells = [[c.strip() for c in line.split(",")] for line in lines[:3]]
    if len(cells) < 3 or cells[0][0].lower() != "price" or cells[1][0].lower() != "ticker":
        return None
    tickers = sorted({t for t in cells[1][1:] if t})
    if len(tickers) > 1:
        raise DataError(f"{origin}: yfinance file holds several tickers {tickers}; write one ticker per file")
    index_row = cells[2][0].lower() in ("date", "datetime") and not any(cells[2][1:])
    time_name = cells[2][0] if index_row else "Date"
    return [",".join([time_name, *cells[0][1:]]), *lines[3 if index_row else 2 :]]


def parse_ohlcv(text: str, *, origin: str = "csv") -> tuple[pl.DataFrame, OhlcvHeader]:
    """Header-led OHLCV body → canonical table in file order, and how its header was read."""
    df = read_strings(text, has_header=True, origin=origin)
    header = match_header(df.columns, origin=origin)
    floats = {name: to_float(df, column, origin=origin) for name, column in header.columns.items()}
    if "trades" in floats:
        floats["trades"] = floats["trades"].cast(pl.Int64)
    open_ms = times_to_ms(df.get_column(header.time_column), origin=origin)
    out = pl.DataFrame({"open_time": pl.Series(open_ms).cast(pl.Datetime("ms", "UTC")), **floats})
    return conform(out), header


def times_to_ms(raw: pl.Series, *, origin: str) -> np.ndarray:
    """A time column → UTC epoch ms. Numbers are unix times (unit decided per row); text is ISO-8601, naive
    text is UTC and text with an offset is converted — except dates at local midnight.

    A daily bar written as "2024-03-08 00:00:00-05:00" (yfinance `history()`) is labelled with its trading
    date; the offset says where the exchange is. Converting it would put the bar at 05:00 UTC and move it to
    04:00 at each DST change — off the 1d grid — so a column whose every wall-clock time is midnight keeps
    its dates, as UTC midnights.
    """
    if raw.null_count():
        raise DataError(f"{origin}: column {raw.name!r} row {int(raw.is_null().arg_true()[0])} is empty")
    numeric = raw.cast(pl.Float64, strict=False)
    if numeric.null_count() == 0:
        return epoch_to_ms(numeric.to_numpy(), origin=origin)
    text = raw.str.strip_chars()
    parsed = _iso(text, raw, origin)
    if parsed.dtype.time_zone is None:  # type: ignore[union-attr]
        return parsed.dt.replace_time_zone("UTC").dt.epoch("ms").to_numpy()
    local = _iso(text.str.replace(_OFFSET_RE, "$1"), raw, origin)
    if (local.dt.epoch("ms") % 86_400_000 == 0).all():
        return local.dt.epoch("ms").to_numpy()
    return parsed.dt.convert_time_zone("UTC").dt.epoch("ms").to_numpy()


def _iso(text: pl.Series, raw: pl.Series, origin: str) -> pl.Series:
    parsed = text.str.to_datetime(time_unit="ms", strict=False)
    bad = parsed.is_null().arg_true()
    if bad.len():
        row = int(bad[0])
        raise DataError(f"{origin}: column {raw.name!r} row {row} is neither a unix time nor ISO-8601 ({raw[row]!r})")
    return parsed
