"""BinanceSource against a fake Binance REST server, through the real python-binance client over HTTP.

The fake serves `GET /api/v3/klines` from a deterministic series (string prices, like Binance),
including the still-open current candle, and can throttle (429), ban (418) and reject symbols (400).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import polars as pl
import pytest

from cse_models.data.binance import BinanceSource
from cse_models.data.schema import KLINE_SCHEMA
from cse_models.data.sources import KlineSource, TimeRange
from cse_models.errors import ConfigError, DataError, SourceError

SERIES_START = datetime(2024, 1, 1, tzinfo=UTC)  # first candle of every fake series (a Monday)
NOW = datetime(2024, 6, 1, 10, 30, tzinfo=UTC)  # the injected clock: mid-candle, so one candle is open
BASE_PRICE = {"BTCUSDT": 40_000.0, "ETHUSDT": 2_000.0}
HOUR = timedelta(hours=1)
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _step_ms(interval: str) -> int | None:
    if len(interval) < 2 or interval[-1] not in _UNIT_MS or not interval[:-1].isdigit():
        return None
    return int(interval[:-1]) * _UNIT_MS[interval[-1]]


def fake_kline(symbol: str, step_ms: int, k: int) -> list[Any]:
    """Candle number k of the fake series, laid out and typed exactly as Binance sends it."""
    base = BASE_PRICE[symbol]

    def price(i: int) -> float:
        return base * (1 + 0.01 * math.sin(i / 7)) + 0.25 * i

    open_, close = price(k - 1), price(k)
    high, low = max(open_, close) + 3.5, min(open_, close) - 2.5
    volume = 10 + (k % 17) * 0.125
    open_ms = _ms(SERIES_START) + k * step_ms
    return [
        open_ms,
        f"{open_:.8f}",
        f"{high:.8f}",
        f"{low:.8f}",
        f"{close:.8f}",
        f"{volume:.8f}",
        open_ms + step_ms - 1,
        f"{volume * close:.8f}",
        100 + k % 50,
        f"{volume / 2:.8f}",
        f"{volume * close / 2:.8f}",
        "0",
    ]


@dataclass
class FakeBinance:
    """What the fake answers, and what it received. Tests flip the knobs before fetching."""

    url: str = ""
    now_ms: int = _ms(NOW)
    throttle_first: int = 0  # answer 429 to this many requests first
    retry_after: str | None = "1"  # Retry-After header sent with 429/418
    banned: bool = False  # answer 418 to every request
    requests: list[dict[str, str]] = field(default_factory=list)
    served: list[list[list[Any]]] = field(default_factory=list)  # the rows of each 200 answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(query)
            if path != "/api/v3/klines":
                return 404, {"code": -1, "msg": f"no route {path}"}
            if self.banned:
                return 418, {"code": -1003, "msg": "Way too much request weight used; IP banned."}
            if len(self.requests) <= self.throttle_first:
                return 429, {"code": -1003, "msg": "Too many requests; please use the websocket."}
            status, body = self._klines(query)
            if status == 200:
                self.served.append(body)
            return status, body

    def _klines(self, query: dict[str, str]) -> tuple[int, Any]:
        if query.get("symbol") not in BASE_PRICE:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        step = _step_ms(query.get("interval", ""))
        if step is None:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        limit = int(query.get("limit", "500"))
        if not 1 <= limit <= 1000:
            return 400, {"code": -1130, "msg": "Invalid data sent for a parameter."}
        origin = _ms(SERIES_START)
        end = min(int(query.get("endTime", self.now_ms)), self.now_ms)  # candles open by now, inclusive
        last_k = (end - origin) // step
        if "startTime" in query:
            first_k = max(0, -((origin - int(query["startTime"])) // step))
            last_k = min(last_k, first_k + limit - 1)
        else:
            first_k = max(0, last_k - limit + 1)
        return 200, [fake_kline(query["symbol"], step, k) for k in range(first_k, last_k + 1)]


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        fake = self.server.fake
        status, body = fake.answer(parts.path, dict(parse_qsl(parts.query)))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        if status in (418, 429) and fake.retry_after is not None:
            self.send_header("Retry-After", fake.retry_after)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeBinance


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    server = _FakeServer(("127.0.0.1", 0), _Handler)
    host, port = server.server_address[:2]
    server.fake = FakeBinance(url=f"http://{host}:{port}/api")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_source(fake: FakeBinance, sleeps: list[float]) -> Callable[..., BinanceSource]:
    def make(**kwargs: Any) -> BinanceSource:
        return BinanceSource(fake.url, clock=lambda: NOW, sleep=sleeps.append, **kwargs)

    return make


def expected_table(symbol: str, interval_hours: int, ks: range) -> pl.DataFrame:
    """The fake's candles k ∈ ks as the canonical table, converted independently of the source."""
    rows = [fake_kline(symbol, interval_hours * 3_600_000, k) for k in ks]
    names = list(KLINE_SCHEMA)
    data: dict[str, list[Any]] = {name: [] for name in names}
    for row in rows:
        for i, name in enumerate(names):
            value = row[i]
            if name in ("open_time", "close_time"):
                value = datetime.fromtimestamp(value / 1000, tz=UTC)
            elif name != "trades":
                value = float(value)
            data[name].append(value)
    return pl.DataFrame(data, schema=KLINE_SCHEMA)


def test_is_a_kline_source(make_source: Callable[..., BinanceSource]) -> None:
    assert isinstance(make_source(), KlineSource)


def test_2500_hourly_candles_take_three_pages_of_at_most_1000(
    fake: FakeBinance, make_source: Callable[..., BinanceSource]
) -> None:
    start = SERIES_START + 100 * HOUR
    end = start + 2500 * HOUR

    df = make_source().fetch("BTCUSDT", "1h", start, end)

    assert len(fake.requests) == 3
    assert [q["limit"] for q in fake.requests] == ["1000"] * 3
    assert [int(q["startTime"]) for q in fake.requests] == [_ms(start + n * 1000 * HOUR) for n in range(3)]
    assert all(q["symbol"] == "BTCUSDT" and q["interval"] == "1h" for q in fake.requests)
    assert [len(rows) for rows in fake.served] == [1000, 1000, 500]
    assert df.schema == pl.Schema(KLINE_SCHEMA)
    assert df.height == 2500
    assert df.get_column("open_time").is_sorted()
    assert df.get_column("open_time").n_unique() == 2500
    assert df.equals(expected_table("BTCUSDT", 1, range(100, 2600)))


def test_unclosed_last_candle_is_dropped(fake: FakeBinance, make_source: Callable[..., BinanceSource]) -> None:
    df = make_source().fetch("ETHUSDT", "1h", NOW - 10 * HOUR, None)

    served = fake.served[-1]
    assert served[-1][6] >= _ms(NOW), "the fake must serve the still-open candle for this test to mean much"
    assert len(served) == 10
    assert df.height == 9
    assert df.get_column("open_time")[-1] == datetime(2024, 6, 1, 9, tzinfo=UTC)
    assert (df.get_column("close_time") < NOW).all()


def test_429_waits_retry_after_then_succeeds(
    fake: FakeBinance, make_source: Callable[..., BinanceSource], sleeps: list[float]
) -> None:
    fake.throttle_first, fake.retry_after = 1, "2"

    df = make_source().fetch("BTCUSDT", "1h", NOW - 5 * HOUR, NOW)

    assert sleeps == [2.0]
    assert len(fake.requests) == 2
    assert df.height == 4


def test_429_wait_is_capped_by_max_wait_s(
    fake: FakeBinance, make_source: Callable[..., BinanceSource], sleeps: list[float]
) -> None:
    fake.throttle_first, fake.retry_after = 1, "120"

    make_source(max_wait_s=5.0).fetch("BTCUSDT", "1h", NOW - 5 * HOUR, NOW)

    assert sleeps == [5.0]


def test_429_without_retry_after_waits_one_second(
    fake: FakeBinance, make_source: Callable[..., BinanceSource], sleeps: list[float]
) -> None:
    fake.throttle_first, fake.retry_after = 2, None

    make_source().fetch("BTCUSDT", "1h", NOW - 5 * HOUR, NOW)

    assert sleeps == [1.0, 1.0]


def test_429_forever_gives_up_after_max_retries(
    fake: FakeBinance, make_source: Callable[..., BinanceSource], sleeps: list[float]
) -> None:
    fake.throttle_first = 10**9

    with pytest.raises(SourceError, match=r"429.*gave up after 3 retries"):
        make_source(max_retries=3).fetch("BTCUSDT", "1h", NOW - 5 * HOUR, NOW)

    assert len(fake.requests) == 4
    assert sleeps == [1.0, 1.0, 1.0]


def test_418_ban_fails_at_once_without_retrying(
    fake: FakeBinance, make_source: Callable[..., BinanceSource], sleeps: list[float]
) -> None:
    fake.banned, fake.retry_after = True, "300"

    with pytest.raises(SourceError, match=r"418.*banned.*Retry-After 300 s"):
        make_source().fetch("BTCUSDT", "1h", NOW - 5 * HOUR, NOW)

    assert len(fake.requests) == 1
    assert sleeps == []


def test_unknown_symbol_raises_source_error_naming_it(
    fake: FakeBinance, make_source: Callable[..., BinanceSource]
) -> None:
    with pytest.raises(SourceError, match="NOSUCHCOIN"):
        make_source().fetch("NOSUCHCOIN", "1h", NOW - 5 * HOUR, NOW)

    assert len(fake.requests) == 1


def test_invalid_interval_raises_config_error_before_any_request(
    fake: FakeBinance, make_source: Callable[..., BinanceSource]
) -> None:
    with pytest.raises(ConfigError, match="7h"):
        make_source().fetch("BTCUSDT", "7h", NOW - 5 * HOUR, NOW)

    assert fake.requests == []


def test_malformed_symbol_raises_config_error_before_any_request(
    fake: FakeBinance, make_source: Callable[..., BinanceSource]
) -> None:
    with pytest.raises(ConfigError, match="btc-usdt"):
        make_source().fetch("btc-usdt", "1h", NOW - 5 * HOUR, NOW)

    assert fake.requests == []


@pytest.mark.parametrize("interval", ["1m", "15m", "4h", "1d", "1w"])
def test_any_binance_interval_is_fetched_at_its_own_spacing(
    fake: FakeBinance, make_source: Callable[..., BinanceSource], interval: str
) -> None:
    step = timedelta(milliseconds=_step_ms(interval) or 0)

    df = make_source().fetch("BTCUSDT", interval, NOW - 40 * step, None)

    assert fake.requests[0]["interval"] == interval
    assert df.height >= 3
    assert (df.get_column("open_time").diff().drop_nulls() == step).all()
    assert (df.get_column("close_time") < NOW).all()


def test_anchor_is_the_injected_clock(make_source: Callable[..., BinanceSource]) -> None:
    assert make_source().anchor("BTCUSDT", "1h") == NOW


def test_last_5_days_gives_every_closed_hour_in_the_window(
    fake: FakeBinance, make_source: Callable[..., BinanceSource]
) -> None:
    source = make_source()
    start, end = TimeRange(last="last 5 days").resolve(source.anchor("BTCUSDT", "1h"))

    df = source.fetch("BTCUSDT", "1h", start, end)

    # The window (NOW - 5 days, NOW] with NOW = 10:30 holds the 5*24 = 120 candles opening from
    # 11:00 five days back to 10:00 today; the 10:00 one is still open, so 119 closed candles remain.
    assert df.height == 5 * 24 - 1
    assert df.get_column("open_time")[0] == datetime(2024, 5, 27, 11, tzinfo=UTC)
    assert df.get_column("open_time")[-1] == datetime(2024, 6, 1, 9, tzinfo=UTC)
    assert (df.get_column("open_time").diff().drop_nulls() == HOUR).all()


def test_range_without_candles_raises_data_error(fake: FakeBinance, make_source: Callable[..., BinanceSource]) -> None:
    before_listing = SERIES_START - timedelta(days=30)

    with pytest.raises(DataError, match=r"BTCUSDT 1h \[2023-12-02"):
        make_source().fetch("BTCUSDT", "1h", before_listing, before_listing + timedelta(days=1))

    assert len(fake.requests) == 1


def test_start_not_before_end_raises_data_error_without_request(
    fake: FakeBinance, make_source: Callable[..., BinanceSource]
) -> None:
    with pytest.raises(DataError, match="start is not before end"):
        make_source().fetch("BTCUSDT", "1h", NOW - HOUR, NOW - HOUR)

    assert fake.requests == []
