"""Kline sources that read files: any CSV archive, and the real sample bundled with the package."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import polars as pl

from cse_models.data.csv_archive import read_kline_csv
from cse_models.data.schema import interval_to_timedelta, validate_symbol
from cse_models.data.sources import filter_range
from cse_models.errors import DataError, SourceError

SAMPLE_DIR = Path(__file__).parent / "sample"
SAMPLE_SYMBOLS = ("BTCUSDT", "ETHUSDT")
SAMPLE_RESAVED_SYMBOLS = ("LTCUSDT", "DOTUSDT", "SOLUSDT")
SAMPLE_INTERVAL = "1h"


@cache
def _read_cached(path: Path, mtime_ns: int) -> pl.DataFrame:
    return read_kline_csv(path)


def read_cached(path: Path) -> pl.DataFrame:
    """Parse a file once per process (and again when it changes on disk)."""
    return _read_cached(path, path.stat().st_mtime_ns)


@dataclass(frozen=True)
class CsvArchiveSource:
    """Reads `{directory}/{pattern}` files, e.g. CryptoDataDownload's `Binance_BTCUSDT_1h.csv`.

    The pattern may use {symbol} and {interval}; a Binance public-archive file works too.
    """

    directory: Path
    pattern: str = "Binance_{symbol}_{interval}.csv"

    def path(self, symbol: str, interval: str) -> Path:
        validate_symbol(symbol)
        interval_to_timedelta(interval)
        path = Path(self.directory) / self.pattern.format(symbol=symbol, interval=interval)
        if not path.is_file():
            raise SourceError(f"no kline file for {symbol} {interval}: {path} does not exist")
        return path

    def fetch(self, symbol: str, interval: str, start: datetime | None, end: datetime | None) -> pl.DataFrame:
        klines = filter_range(read_cached(self.path(symbol, interval)), start, end)
        if klines.height == 0:
            raise DataError(f"{symbol} {interval}: no klines between {start} and {end}")
        return klines

    def anchor(self, symbol: str, interval: str) -> datetime:
        return read_cached(self.path(symbol, interval)).get_column("open_time").max()


class SampleSource(CsvArchiveSource):
    """The bundled real sample, kept in its raw formats so that the demo and the tests walk the real reading
    and cleaning paths without any network:
    - `SAMPLE_SYMBOLS`, the demo's (seeded as its partitions): the last ~12 months of BTCUSDT and ETHUSDT 1h
      from CryptoDataDownload, 2020-06-10 → 2021-06-10 (newest first, duplicates, mixed timestamp units);
    - `SAMPLE_RESAVED_SYMBOLS`: LTCUSDT (the last year, 2020-12-06 → 2021-12-06) and DOTUSDT and SOLUSDT (all
      of their 8 months from 2021-04-26), rows copied verbatim from exports a spreadsheet re-saved (unix in
      scientific notation, dd-mm-yy dates, a separate time column)."""

    def __init__(self) -> None:
        super().__init__(directory=SAMPLE_DIR)

    def path(self, symbol: str, interval: str) -> Path:
        bundled = SAMPLE_SYMBOLS + SAMPLE_RESAVED_SYMBOLS
        if symbol not in bundled or interval != SAMPLE_INTERVAL:
            raise SourceError(
                f"the bundled sample has {', '.join(bundled)} at {SAMPLE_INTERVAL} only, "
                f"not {symbol} {interval}; configure the binance or csv source for other data"
            )
        return super().path(symbol, interval)
