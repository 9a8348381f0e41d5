"""Server-side klines for /predict without klines in the body: the latest closed candles of a series,
fetched through a `KlineSource` and cached until the next candle closes.

The Make Us Rich seed fetched from Binance on every `/predict?currency=` call, so N requests an hour cost
N exchange calls (and, past Binance's request weight, a 418 ban for the whole server). The latest closed
candles change only when a candle closes, so one call per candle per series serves every request between.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from cse_models.data.clean import CleaningConfig, clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.data.schema import interval_ms
from cse_models.data.sources import KlineSource
from cse_models.errors import ConfigError, UnknownNameError
from cse_serving.schemas import Kline

log = logging.getLogger(__name__)

# On the request path a throttled exchange should become a quick 503, not a worker blocked for minutes
# (BinanceSource's defaults suit batch downloads: 5 retries, up to 60 s each).
REQUEST_PATH_RETRIES = 1
REQUEST_PATH_MAX_WAIT_S = 2.0
DEFAULT_CLEANING = CleaningConfig()


@dataclass(frozen=True)
class _Cached:
    klines: tuple[Kline, ...]
    limit: int
    """The `limit` fetched; a source may have had fewer candles (a new listing)."""
    refresh_at_ms: int


def klines_from_table(table: pl.DataFrame) -> list[Kline]:
    """Canonical kline table (`schema.KLINE_SCHEMA`) → request klines, times as unix ms."""
    rows = table.with_columns(pl.col("open_time", "close_time").dt.epoch("ms")).to_dicts()
    return [Kline(**row) for row in rows]


def next_refresh_ms(last_open_ms: int, step_ms: int, now_ms: int) -> int:
    """When the cached klines of a series go stale.

    A live source has a new closed candle once the candle after the newest one served has closed
    (`last_open + 2·step`). An archive's newest candle closed long ago, so the next interval boundary of
    the clock bounds it instead: either way, at most one source call per candle per series."""
    return max(last_open_ms + 2 * step_ms, (now_ms // step_ms + 1) * step_ms)


class SourceKlineFetcher:
    """`(symbol, interval, limit) → the latest `limit` closed klines, oldest first`, from a KlineSource.

    Why a class: it owns the per-series cache and the per-series locks. Concurrent requests for one series
    wait for a single fetch instead of each calling the exchange; other series are not held up. A failed
    fetch is not cached, and its typed error (SourceError, DataError) reaches the caller unchanged.

    The klines go through `clean_klines` (the cleaning the klines asset applies before training), so an
    archive's raw rows — newest first, duplicated — arrive sorted and unique; rows that have not closed by
    `clock` are dropped whatever the source."""

    def __init__(
        self,
        source: KlineSource,
        *,
        clock: Callable[[], float] = time.time,
        cleaning: CleaningConfig = DEFAULT_CLEANING,
    ) -> None:
        self.source = source
        self._clock = clock
        self._cleaning = cleaning
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._series_locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def __call__(self, symbol: str, interval: str, limit: int) -> list[Kline]:
        if limit < 1:
            raise ConfigError(f"limit must be ≥ 1, got {limit}")
        step = interval_ms(interval)
        key = (symbol, interval)
        with self._lock(key):
            now_ms = self._now_ms()
            cached = self._cache.get(key)
            if cached is None or cached.limit < limit or now_ms >= cached.refresh_at_ms:
                cached = self._fetch(symbol, interval, step, limit, now_ms)
                self._cache[key] = cached
        return list(cached.klines[-limit:])

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._locks_lock:
            return self._series_locks.setdefault(key, threading.Lock())

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _fetch(self, symbol: str, interval: str, step: int, limit: int, now_ms: int) -> _Cached:
        """Ask for a little more than `limit` back from the source's anchor (now for a live source, the
        newest candle for an archive): the range then holds `limit` closed candles even when the still-open
        one is dropped or the clock sits exactly on a candle boundary."""
        start = self.source.anchor(symbol, interval) - (limit + 1) * timedelta(milliseconds=step)
        raw = self.source.fetch(symbol, interval, start, None)
        table, report = clean_klines(raw, interval, self._cleaning)
        opens = table.get_column("open_time").dt.epoch("ms")
        closed = table.filter(opens + step <= now_ms).tail(limit)
        log.info(
            "%s %s: %d closed kline(s) from %d source row(s) (%d after cleaning)",
            symbol,
            interval,
            closed.height,
            report.rows_in,
            report.rows_out,
        )
        newest = int(closed.get_column("open_time").dt.epoch("ms").max() or 0)  # 0: none closed yet
        return _Cached(tuple(klines_from_table(closed)), limit, next_refresh_ms(newest, step, now_ms))


def _no_fetcher() -> None:
    """Clients send their klines; /predict without them answers 422."""
    return None


def _sample_fetcher(*, clock: Callable[[], float] = time.time) -> SourceKlineFetcher:
    """The bundled historical year (the demo, offline): "latest" is the newest bundled candle."""
    return SourceKlineFetcher(SampleSource(), clock=clock)


def _binance_fetcher(*, api_url: str | None = None, clock: Callable[[], float] = time.time) -> SourceKlineFetcher:
    """Binance spot REST; `api_url` points python-binance elsewhere (a testnet, a fake server)."""
    from cse_models.data.binance import BinanceSource  # python-binance loads only when this kind is chosen

    source = BinanceSource(
        api_url,
        max_retries=REQUEST_PATH_RETRIES,
        max_wait_s=REQUEST_PATH_MAX_WAIT_S,
        clock=lambda: datetime.fromtimestamp(clock(), UTC),
    )
    return SourceKlineFetcher(source, clock=clock)


FETCHERS: dict[str, Callable[..., SourceKlineFetcher | None]] = {
    "none": _no_fetcher,
    "sample": _sample_fetcher,
    "binance": _binance_fetcher,
}


def fetcher_from_settings(kind: str, **options: object) -> SourceKlineFetcher | None:
    """The fetcher of a kind named in the settings (`FETCHERS`), or None for "none".

    Options left None are ignored, so settings may pass every field they have (`api_url=None` for the
    sample); an option the kind does not take raises ConfigError naming the ones it does."""
    builder = FETCHERS.get(kind)
    if builder is None:
        raise UnknownNameError(f"kline fetcher {kind!r} is unknown; known: {', '.join(FETCHERS)}")
    given = {name: value for name, value in options.items() if value is not None}
    accepted = list(inspect.signature(builder).parameters)
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ConfigError(f"kline fetcher {kind!r} takes {accepted or 'no options'}, not {unknown}")
    return builder(**given)
