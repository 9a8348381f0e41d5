"""Live klines from the Binance spot REST API (`GET /api/v3/klines`) through python-binance.

Binance serves at most 1000 candles per request, throttles with HTTP 429 (and bans with 418 when a
client ignores that), and always includes the still-open current candle. This source hides all three:
it pages forward, waits out 429s as told by `Retry-After`, stops at once on a ban, and returns only
closed candles in the canonical table (`schema.KLINE_SCHEMA`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException
from requests import RequestException

from cse_models.data.csv_archive import ARCHIVE_COLUMNS
from cse_models.data.schema import conform, interval_ms, validate_symbol
from cse_models.errors import ConfigError, DataError, SourceError, TransientSourceError

logger = logging.getLogger(__name__)

PAGE_LIMIT = 1000  # Binance's maximum `limit` for /api/v3/klines
DEFAULT_RETRY_AFTER_S = 1.0  # used when a 429 carries no (or an unreadable) Retry-After header
INVALID_SYMBOL_CODE = -1121

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# Binance's kline row layout (the REST rows and the archive files share it); "ignore" is dropped.
_ROW_FIELDS = ARCHIVE_COLUMNS[:-1]
_FLOAT_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_base",
    "taker_buy_quote",
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC, the only zone cse uses."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _ceil_ms(moment: datetime) -> int:
    """Epoch ms of the first whole millisecond at or after `moment` (open times are whole ms)."""
    return -((_EPOCH - _as_utc(moment)) // _ONE_MS)


def _fmt_ms(ms: int) -> str:
    return (_EPOCH + ms * _ONE_MS).isoformat()


class BinanceSource:
    """KlineSource over the Binance spot REST API.

    `client`, `clock` and `sleep` are injectable so tests can run the real python-binance client
    against a local fake server, with a fixed "now" and without actually waiting out rate limits.
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        max_retries: int = 5,
        max_wait_s: float = 60.0,
        client: Client | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        if max_wait_s < 0:
            raise ConfigError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self.max_retries = max_retries
        self.max_wait_s = float(max_wait_s)
        self._client = client if client is not None else Client(api_key=None, api_secret=None, ping=False)
        if api_url is not None:
            # python-binance has no base-URL argument; API_URL is what `_create_api_uri` reads.
            self._client.API_URL = api_url.rstrip("/")
        self._clock = clock or _utc_now
        self._sleep = sleep

    def anchor(self, symbol: str, interval: str) -> datetime:
        """A live source counts relative ranges back from the wall clock."""
        return self._now()

    def fetch(self, symbol: str, interval: str, start: datetime | None, end: datetime | None) -> pl.DataFrame:
        """Closed candles with start ≤ open_time < end; raises DataError rather than return nothing.

        `start=None` means "from the first candle Binance has", `end=None` means "up to now".
        """
        validate_symbol(symbol)
        step_ms = interval_ms(interval)
        now = self._now()
        start_ms = 0 if start is None else _ceil_ms(start)
        end_ms = _ceil_ms(now if end is None else end)  # exclusive
        label = f"{symbol} {interval} [{_fmt_ms(start_ms)}, {_fmt_ms(end_ms)})"
        if start_ms >= end_ms:
            raise DataError(f"Binance: empty range for {label}: start is not before end")
        rows = self._fetch_rows(symbol, interval, step_ms, start_ms, end_ms)
        closed = _closed_in_range(rows, start_ms, end_ms, now_ms=_ceil_ms(now))
        if not closed:
            raise DataError(f"Binance returned no closed candles for {label}")
        logger.info("Binance: %d closed candle(s) for %s", len(closed), label)
        return _to_table(closed)

    def _now(self) -> datetime:
        return _as_utc(self._clock())

    def _fetch_rows(self, symbol: str, interval: str, step_ms: int, start_ms: int, end_ms: int) -> list[Sequence[Any]]:
        """Page forward 1000 candles at a time; a short or empty page means Binance has no more."""
        rows: list[Sequence[Any]] = []
        cursor = start_ms
        while cursor < end_ms:
            page = self._get_page(symbol, interval, cursor, end_ms - 1)  # Binance's endTime is inclusive
            logger.debug("Binance: page from %s: %d row(s)", _fmt_ms(cursor), len(page))
            rows.extend(page)
            if len(page) < PAGE_LIMIT:
                break
            cursor = int(page[-1][0]) + step_ms
        return rows

    def _get_page(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Sequence[Any]]:
        """One request, retried after 429s; every other failure becomes a SourceError at once (a
        TransientSourceError when a later attempt may succeed: 429s beyond max_retries, 5xx, network)."""
        for attempt in range(self.max_retries + 1):
            try:
                return self._client.get_klines(
                    symbol=symbol, interval=interval, startTime=start_ms, endTime=end_ms, limit=PAGE_LIMIT
                )
            except BinanceAPIException as exc:
                if exc.status_code != 429:
                    raise _api_error(exc, symbol, interval) from exc
                if attempt == self.max_retries:
                    raise TransientSourceError(
                        f"Binance: HTTP 429 (rate limited) fetching {symbol} {interval}; "
                        f"gave up after {self.max_retries} retries"
                    ) from exc
                wait_s = self._retry_wait(exc)
                logger.warning(
                    "Binance: HTTP 429 for %s %s, waiting %.3g s (retry %d/%d)",
                    symbol,
                    interval,
                    wait_s,
                    attempt + 1,
                    self.max_retries,
                )
                self._sleep(wait_s)
            except (BinanceRequestException, RequestException) as exc:
                raise TransientSourceError(f"Binance: request for {symbol} {interval} failed: {exc}") from exc
        raise AssertionError("unreachable: the retry loop returns or raises")  # pragma: no cover

    def _retry_wait(self, exc: BinanceAPIException) -> float:
        """Honour Retry-After (seconds) so the IP is not banned, but never wait longer than max_wait_s."""
        seconds = _retry_after(exc)
        wait = DEFAULT_RETRY_AFTER_S if seconds is None else max(seconds, 0.0)
        return min(wait, self.max_wait_s)


def _retry_after(exc: BinanceAPIException) -> float | None:
    """Retry-After header in seconds, or None when absent or not a number."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _api_error(exc: BinanceAPIException, symbol: str, interval: str) -> SourceError:
    """Translate a non-429 Binance error into a message a user can act on."""
    if exc.status_code == 418:
        seconds = _retry_after(exc)
        until = f"; Retry-After {seconds:g} s" if seconds is not None else ""
        return SourceError(f"Binance: HTTP 418, this IP is banned for ignoring rate limits{until}; not retrying")
    if exc.code == INVALID_SYMBOL_CODE:
        return SourceError(f"Binance: unknown symbol {symbol!r} ({exc.message})")
    if exc.status_code >= 500:  # Binance's own failure or overload: worth another attempt later
        return TransientSourceError(
            f"Binance: HTTP {exc.status_code} fetching {symbol} {interval}: code {exc.code}: {exc.message}"
        )
    return SourceError(f"Binance: HTTP {exc.status_code} fetching {symbol} {interval}: code {exc.code}: {exc.message}")


def _closed_in_range(rows: list[Sequence[Any]], start_ms: int, end_ms: int, *, now_ms: int) -> list[Sequence[Any]]:
    """Keep candles inside the range whose close_time has passed; the current candle is still moving.

    `now_ms` is now rounded up to whole ms, so `close_time < now_ms` is exactly `close_time < now`.
    """
    if any(len(row) < len(_ROW_FIELDS) for row in rows):
        raise DataError(f"Binance: kline row with fewer than {len(_ROW_FIELDS)} fields")
    return [row for row in rows if start_ms <= int(row[0]) < end_ms and int(row[6]) < now_ms]


def _to_table(rows: list[Sequence[Any]]) -> pl.DataFrame:
    """Binance sends prices and volumes as decimal strings; the canonical table wants floats and times."""
    columns = {name: [row[i] for row in rows] for i, name in enumerate(_ROW_FIELDS)}
    frame = pl.DataFrame(
        {
            "open_time": pl.Series(columns["open_time"], dtype=pl.Int64),
            "close_time": pl.Series(columns["close_time"], dtype=pl.Int64),
            "trades": pl.Series(columns["trades"], dtype=pl.Int64),
            **{name: pl.Series([str(v) for v in columns[name]], dtype=pl.String) for name in _FLOAT_FIELDS},
        }
    )
    try:
        frame = frame.with_columns(
            pl.col("open_time", "close_time").cast(pl.Datetime("ms", "UTC")),
            pl.col(*_FLOAT_FIELDS).cast(pl.Float64, strict=True),
        )
    except pl.exceptions.InvalidOperationError as exc:
        raise DataError(f"Binance: non-numeric price/volume field in klines: {exc}") from exc
    return conform(frame).sort("open_time")
