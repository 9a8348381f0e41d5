"""A fake Binance REST server on 127.0.0.1 for tests that run the real python-binance client over HTTP.

It serves `GET /api/v3/klines` from a deterministic series (string prices, like Binance), including the
still-open current candle, and can throttle (429), fail (503), ban (418) and reject symbols (400). A module
of its own under tests/ (on sys.path through tests/conftest.py) so the data tests and the serving tests
share one fake.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SERIES_START = datetime(2024, 1, 1, tzinfo=UTC)  # first candle of every fake series (a Monday)
NOW = datetime(2024, 6, 1, 10, 30, tzinfo=UTC)  # the default "now": mid-candle, so one candle is open
BASE_PRICE = {"BTCUSDT": 40_000.0, "ETHUSDT": 2_000.0}
HOUR = timedelta(hours=1)
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def step_ms(interval: str) -> int | None:
    """Milliseconds per candle of a Binance interval name, None for anything else."""
    if len(interval) < 2 or interval[-1] not in _UNIT_MS or not interval[:-1].isdigit():
        return None
    return int(interval[:-1]) * _UNIT_MS[interval[-1]]


def fake_kline(symbol: str, step: int, k: int) -> list[Any]:
    """Candle number k of the fake series, laid out and typed exactly as Binance sends it."""
    base = BASE_PRICE[symbol]

    def price(i: int) -> float:
        return base * (1 + 0.01 * math.sin(i / 7)) + 0.25 * i

    open_, close = price(k - 1), price(k)
    high, low = max(open_, close) + 3.5, min(open_, close) - 2.5
    volume = 10 + (k % 17) * 0.125
    open_ms = epoch_ms(SERIES_START) + k * step
    return [
        open_ms,
        f"{open_:.8f}",
        f"{high:.8f}",
        f"{low:.8f}",
        f"{close:.8f}",
        f"{volume:.8f}",
        open_ms + step - 1,
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
    now_ms: int = epoch_ms(NOW)
    throttle_first: int = 0  # answer 429 to this many requests first
    unavailable_first: int = 0  # answer 503 to this many requests first (after any 429s)
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
            if len(self.requests) <= self.throttle_first + self.unavailable_first:
                return 503, {"code": -1001, "msg": "Internal error; unable to process your request."}
            status, body = self._klines(query)
            if status == 200:
                self.served.append(body)
            return status, body

    def _klines(self, query: dict[str, str]) -> tuple[int, Any]:
        if query.get("symbol") not in BASE_PRICE:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        step = step_ms(query.get("interval", ""))
        if step is None:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        limit = int(query.get("limit", "500"))
        if not 1 <= limit <= 1000:
            return 400, {"code": -1130, "msg": "Invalid data sent for a parameter."}
        origin = epoch_ms(SERIES_START)
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


@contextmanager
def serve_fake_binance() -> Iterator[FakeBinance]:
    """Run the fake on a free port for the block; `FakeBinance.url` is the API_URL python-binance needs."""
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
