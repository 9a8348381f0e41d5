"""Server-side kline fetching through the real python-binance client against the fake Binance server on
127.0.0.1 (`tests/fake_binance.py`), and through the bundled sample offline.

The fake's clock stands at 10:30 on 2024-06-01, so the 10:00 candle is still open and is served anyway,
as Binance does.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fake_binance import HOUR, NOW, SERIES_START, FakeBinance, epoch_ms, fake_kline, serve_fake_binance

from cse_models.data.file_sources import SampleSource
from cse_models.errors import ConfigError, SourceError, UnknownNameError
from cse_serving.fetching import SourceKlineFetcher, fetcher_from_settings
from cse_serving.schemas import Kline

HOUR_MS = 3_600_000


class Clock:
    """A settable clock in unix seconds."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> float:
        return self.moment.timestamp()


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with serve_fake_binance() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def fetcher(fake: FakeBinance, clock: Clock) -> SourceKlineFetcher:
    made = fetcher_from_settings("binance", api_url=fake.url, clock=clock)
    assert isinstance(made, SourceKlineFetcher)
    return made


def open_times(klines: list[Kline]) -> list[int]:
    return [k.open_time for k in klines]


def hours_before(moment: datetime, *hours: int) -> list[int]:
    return [epoch_ms(moment - h * HOUR) for h in hours]


def test_returns_the_latest_closed_klines_oldest_first_without_the_open_candle(
    fake: FakeBinance, fetcher: SourceKlineFetcher
) -> None:
    klines = fetcher("BTCUSDT", "1h", 5)

    assert fake.served[-1][-1][0] == epoch_ms(NOW - timedelta(minutes=30)), "the fake served the open 10:00 candle"
    assert open_times(klines) == hours_before(NOW - timedelta(minutes=30), 5, 4, 3, 2, 1)
    first_k = (klines[0].open_time - epoch_ms(SERIES_START)) // HOUR_MS
    expected = [fake_kline("BTCUSDT", HOUR_MS, k) for k in range(first_k, first_k + 5)]
    assert [k.close for k in klines] == [float(row[4]) for row in expected]
    assert [k.close_time for k in klines] == [row[6] for row in expected]


def test_a_second_call_within_the_same_candle_makes_no_request(
    fake: FakeBinance, fetcher: SourceKlineFetcher, clock: Clock
) -> None:
    first = fetcher("BTCUSDT", "1h", 5)
    clock.moment = NOW + timedelta(minutes=29, seconds=59)

    again = fetcher("BTCUSDT", "1h", 5)
    fewer = fetcher("BTCUSDT", "1h", 3)

    assert len(fake.requests) == 1
    assert open_times(again) == open_times(first)
    assert open_times(fewer) == open_times(first)[-3:]


def test_after_the_next_candle_closes_it_fetches_again(
    fake: FakeBinance, fetcher: SourceKlineFetcher, clock: Clock
) -> None:
    fetcher("BTCUSDT", "1h", 5)
    eleven = NOW + timedelta(minutes=30)
    clock.moment, fake.now_ms = eleven, epoch_ms(eleven)

    klines = fetcher("BTCUSDT", "1h", 5)

    assert len(fake.requests) == 2
    assert open_times(klines) == hours_before(eleven, 5, 4, 3, 2, 1)


def test_each_series_is_cached_apart_and_a_larger_limit_fetches_again(
    fake: FakeBinance, fetcher: SourceKlineFetcher
) -> None:
    fetcher("BTCUSDT", "1h", 5)
    fetcher("ETHUSDT", "1h", 5)
    fetcher("BTCUSDT", "4h", 5)
    assert len(fake.requests) == 3

    assert len(fetcher("BTCUSDT", "1h", 8)) == 8
    assert len(fake.requests) == 4


def test_concurrent_callers_of_one_series_share_one_fetch(fake: FakeBinance, fetcher: SourceKlineFetcher) -> None:
    start = threading.Barrier(8)
    results: list[list[int]] = []

    def call() -> None:
        start.wait()
        results.append(open_times(fetcher("BTCUSDT", "1h", 5)))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(fake.requests) == 1
    assert len(results) == 8 and all(r == results[0] for r in results)


def test_a_banned_server_raises_source_error_and_the_failure_is_not_cached(
    fake: FakeBinance, fetcher: SourceKlineFetcher
) -> None:
    fake.banned = True
    with pytest.raises(SourceError, match="418"):
        fetcher("BTCUSDT", "1h", 5)

    fake.banned = False
    assert len(fetcher("BTCUSDT", "1h", 5)) == 5
    assert len(fake.requests) == 2


def test_an_unreachable_server_raises_source_error(clock: Clock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fetcher = fetcher_from_settings("binance", api_url=f"http://127.0.0.1:{port}/api", clock=clock)
    assert fetcher is not None

    with pytest.raises(SourceError, match="BTCUSDT 1h"):
        fetcher("BTCUSDT", "1h", 5)


def test_the_sample_kind_serves_the_newest_bundled_candles_offline() -> None:
    fetcher = fetcher_from_settings("sample", api_url=None)
    assert fetcher is not None

    klines = fetcher("BTCUSDT", "1h", 48)

    newest = SampleSource().anchor("BTCUSDT", "1h")
    times = open_times(klines)
    assert len(klines) == 48
    assert times[-1] == epoch_ms(newest)
    assert all(a < b for a, b in itertools.pairwise(times))
    assert all(k.high >= k.low > 0 for k in klines)


def test_fetcher_kinds_none_unknown_and_unknown_options() -> None:
    assert fetcher_from_settings("none") is None
    with pytest.raises(UnknownNameError, match="none, sample, binance"):
        fetcher_from_settings("kraken")
    with pytest.raises(ConfigError, match="api_url"):
        fetcher_from_settings("sample", api_url="http://127.0.0.1:1/api")


def test_limit_must_be_positive(fetcher: SourceKlineFetcher) -> None:
    with pytest.raises(ConfigError, match="limit"):
        fetcher("BTCUSDT", "1h", 0)
