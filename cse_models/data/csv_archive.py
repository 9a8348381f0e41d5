"""Reading kline CSVs as they are found in the wild, into the canonical table, naming the format found.

The format is decided from the first content line (after CryptoDataDownload's URL banner and blank lines):
- `cryptodatadownload` (`unix,date,symbol,open,high,low,close,Volume X,Volume USDT,tradecount`): newest row
  first, `unix` in seconds *or* milliseconds row by row, text dates in two styles ("2021-06-10 00:00:00",
  "2017-08-17 06-AM").
- `cryptodatadownload_resaved`: the same after a spreadsheet re-saved it, recognised by its separate `time`
  column (`unix,date,time,symbol,...`): `unix` may be in scientific notation with its precision lost, `date` in
  the locale's order (`dd-mm-yy`); rows whose unix is imprecise are read from date + time (`csv_open_time`).
- `binance_archive` (data.binance.vision): a first cell that is a number, i.e. no header, 12 columns,
  open_time in ms before 2025-01-01 and in µs from then on; newer files carry an `open_time,...,close_time,
  ...,ignore` header line, recognised by its `close_time`.
- `yfinance`: `yf.download(...).to_csv()`, whose three header rows start with Price, Ticker and Date.
- `pandas_date_index`: `df.to_csv()` of a date-indexed frame — an unnamed first column, or `Date`/`Datetime`,
  then Open/High/Low/Close/Volume in any case ("Adj Close" and other extra columns ignored).
- `plain_ohlcv`: any other header with a time column (`timestamp`, `time`, ...) and open/high/low/close/volume.
A header that fits none raises DataError naming the missing and the found columns (`csv_ohlcv.match_header`).

The unit of every timestamp is decided per row from its magnitude, and where a text date exists it
must agree with that decision: a file where they disagree raises instead of being guessed wrong.
Gaps are not checked here: closed markets (weekends, nights) leave regular ones, which cleaning reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from cse_models.data.csv_cells import epoch_to_ms, read_strings, require, to_float
from cse_models.data.csv_ohlcv import match_header, parse_ohlcv, yfinance_header
from cse_models.data.csv_open_time import cdd_open_times
from cse_models.data.schema import conform
from cse_models.errors import DataError

__all__ = ["ARCHIVE_COLUMNS", "FORMATS", "KlineCsv", "epoch_to_ms", "read_kline_csv", "read_kline_file"]

log = logging.getLogger(__name__)

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
FORMATS = {
    "cryptodatadownload": "CryptoDataDownload export",
    "cryptodatadownload_resaved": "CryptoDataDownload re-saved by a spreadsheet",
    "binance_archive": "Binance public archive",
    "yfinance": "yfinance download",
    "pandas_date_index": "pandas/yfinance date-index CSV",
    "plain_ohlcv": "plain OHLCV CSV",
}


@dataclass(frozen=True)
class KlineCsv:
    """A file read into the canonical table, with the format it was read as (a `FORMATS` key) and a line
    that says how, e.g. "pandas/yfinance date-index CSV (time column 'Date'; ignored ['Adj Close'])"."""

    klines: pl.DataFrame
    format: str
    description: str


def read_kline_csv(path: str | Path) -> pl.DataFrame:
    """The canonical table of any supported kline CSV; `read_kline_file` also says which format it was."""
    return read_kline_file(path).klines


def read_kline_file(path: str | Path) -> KlineCsv:
    """Read a kline CSV of any supported format, detecting the format from its header and content."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    body = lines[_first_content_line(lines, path) :]
    name = detect_format(body, origin=str(path))
    klines, detail = _PARSERS[name](body, str(path))
    check_file_order(klines, origin=str(path))
    description = f"{FORMATS[name]} ({detail})" if detail else FORMATS[name]
    log.info("%s: %d rows read as %s", path, klines.height, description)
    return KlineCsv(klines, name, description)


def detect_format(body: list[str], *, origin: str = "csv") -> str:
    """The `FORMATS` key of a file, from its first content line; header-led OHLCV is the fallback, whose
    parser names the missing columns when the header fits nothing."""
    cells = [c.strip().strip('"').lower() for c in body[0].split(",")]
    if _is_number(cells[0]):
        return "binance_archive"
    if cells[0] == "unix":
        return "cryptodatadownload_resaved" if "time" in cells else "cryptodatadownload"
    if cells[0] in ("open_time", "timestamp") and "close_time" in cells:
        return "binance_archive"
    if cells[0] == "price" and len(body) > 1 and body[1].strip().lower().startswith("ticker"):
        return "yfinance"
    header = match_header([c.strip().strip('"') for c in body[0].split(",")], origin=origin)
    return "pandas_date_index" if header.is_date_index else "plain_ohlcv"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_cryptodatadownload(body: list[str], origin: str) -> tuple[pl.DataFrame, str]:
    return parse_cryptodatadownload("\n".join(body), origin=origin)


def _read_binance_archive(body: list[str], origin: str) -> tuple[pl.DataFrame, str]:
    has_header = not _is_number(body[0].split(",")[0].strip())
    text = "\n".join(body[1:] if has_header else body)
    return parse_binance_archive(text, origin=origin), "header line" if has_header else "no header"


def _read_ohlcv(body: list[str], origin: str) -> tuple[pl.DataFrame, str]:
    folded = yfinance_header(body, origin=origin)
    klines, header = parse_ohlcv("\n".join(folded or body), origin=origin)
    ignored = f"; ignored {list(header.ignored)}" if header.ignored else ""
    return klines, f"time column {header.time_column!r}{ignored}"


_PARSERS: dict[str, Callable[[list[str], str], tuple[pl.DataFrame, str]]] = {
    "cryptodatadownload": _read_cryptodatadownload,
    "cryptodatadownload_resaved": _read_cryptodatadownload,
    "binance_archive": _read_binance_archive,
    "yfinance": _read_ohlcv,
    "pandas_date_index": _read_ohlcv,
    "plain_ohlcv": _read_ohlcv,
}


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


def parse_cryptodatadownload(text: str, *, origin: str = "csv") -> tuple[pl.DataFrame, str]:
    """CryptoDataDownload body (header line first) → (canonical table in file order, how its open times were
    read: "" where the unix column is exact)."""
    df = read_strings(text, has_header=True, origin=origin)
    df = df.rename({c: c.strip() for c in df.columns})
    volume_cols = [c for c in df.columns if c.lower().startswith("volume")]
    require(df, ["unix", "date", *_CDD_PRICE], origin)
    if len(volume_cols) < 2:
        raise DataError(f"{origin}: expected base and quote volume columns ('Volume X', 'Volume USDT')")
    quote_col = next((c for c in volume_cols if c.lower().endswith(("usdt", "usd", "busd"))), volume_cols[-1])
    base_col = next(c for c in volume_cols if c != quote_col)
    open_ms, detail = cdd_open_times(df, origin=origin)
    trades = df.get_column("tradecount").cast(pl.Float64, strict=False) if "tradecount" in df.columns else None
    out = pl.DataFrame(
        {
            "open_time": pl.Series(open_ms).cast(pl.Datetime("ms", "UTC")),
            **{c: to_float(df, c, origin=origin) for c in _CDD_PRICE},
            "volume": to_float(df, base_col, origin=origin),
            "quote_volume": to_float(df, quote_col, origin=origin),
            "trades": trades.cast(pl.Int64) if trades is not None else None,
        }
    )
    return conform(out), detail


def parse_binance_archive(text: str, *, origin: str = "csv") -> pl.DataFrame:
    """Binance public-archive body (no header, 12 columns) → canonical table, in file order."""
    df = read_strings(text, has_header=False, origin=origin)
    if df.width < 11:
        raise DataError(
            f"{origin}: a file without a header line is read as the Binance archive, whose rows need 12 columns, "
            f"found {df.width}; give the file a header such as timestamp,open,high,low,close,volume"
        )
    df = df.rename(dict(zip(df.columns, ARCHIVE_COLUMNS, strict=False)))
    open_ms = epoch_to_ms(to_float(df, "open_time", origin=origin).to_numpy(), origin=origin)
    close_ms = epoch_to_ms(to_float(df, "close_time", origin=origin).to_numpy(), origin=origin)
    out = pl.DataFrame(
        {
            "open_time": pl.Series(open_ms).cast(pl.Datetime("ms", "UTC")),
            **{c: to_float(df, c, origin=origin) for c in ("open", "high", "low", "close", "volume")},
            "close_time": pl.Series(close_ms).cast(pl.Datetime("ms", "UTC")),
            "quote_volume": to_float(df, "quote_volume", origin=origin),
            "trades": to_float(df, "trades", origin=origin).cast(pl.Int64),
            "taker_buy_base": to_float(df, "taker_buy_base", origin=origin),
            "taker_buy_quote": to_float(df, "taker_buy_quote", origin=origin),
        }
    )
    return conform(out)
