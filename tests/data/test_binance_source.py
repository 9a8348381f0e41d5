"""BinanceSource against a fake Binance REST server, through the real python-binance client over HTTP.

The fake (`tests/fake_binance.py`, shared with the serving tests) serves `GET /api/v3/klines` from a
deterministic series (string prices, like Binance), including the still-open current candle, and can
throttle (429), ban (418) and reject symbols (400).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from fake_binance import HOUR, NOW, SERIES_START, FakeBinance, epoch_ms, fake_kline, serve_fake_binance, step_ms

from cse_models.data.binance import BinanceSource
from cse_models.data.schema import KLINE_SCHEMA
from cse_models.data.sources import KlineSource, TimeRange
from cse_models.errors import ConfigError, DataError, SourceError, TransientSourceError


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with serve_fake_binance() as server:
        yield server


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
    assert [int(q["startTime"]) for q in fake.requests] == [epoch_ms(start + n * 1000 * HOUR) for n in range(3)]
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
    assert served[-1][6] >= epoch_ms(NOW), "the fake must serve the still-open candle for this test to mean much"
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


def test_a_5xx_and_429s_beyond_the_retries_are_transient_a_ban_and_an_unknown_symbol_are_not(
    fake: FakeBinance, make_source: Callable[..., BinanceSource]
) -> None:
    """What an orchestrator may retry later (cse_assets.failures) is told apart by type, not message."""
    fake.unavailable_first = 1
    with pytest.raises(TransientSourceError, match="HTTP 503"):
        make_source().fetch("BTCUSDT", "1h", NOW - 5 * HOUR, NOW)
    fake.requests.clear()
    fake.unavailable_first, fake.throttle_first = 0, 10**9
    with pytest.raises(TransientSourceError, match="429"):
        make_source(max_retries=1).fetch("BTCUSDT", "1h", NOW - 5 * HOUR, NOW)
    fake.throttle_first = 0
    for symbol, banned in (("BTCUSDT", True), ("NOSUCHCOIN", False)):
        fake.banned = banned
        with pytest.raises(SourceError) as raised:
            make_source().fetch(symbol, "1h", NOW - 5 * HOUR, NOW)
        assert not isinstance(raised.value, TransientSourceError)


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
    step = timedelta(milliseconds=step_ms(interval) or 0)

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
