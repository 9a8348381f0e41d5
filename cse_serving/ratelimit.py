"""Request rate limits per API token, and a lockout for clients that keep presenting bad tokens.

Why our own and not Litestar's RateLimitMiddleware: that one keeps every request time of the window
in a Store and JSON-encodes the whole list on each request (O(limit) work per request at 600/minute),
counts in fixed windows (a burst of 2× the limit across a window edge passes), and answers 429
without Retry-After. A token bucket per key is O(1): capacity = the limit, refilled continuously at
limit / period, so a client may burst up to the limit and then sustain the rate.

Keys: the SHA-256 of the presented token (never the token itself, and never in a log or a metric
label), else the client address for requests without a token. Unknown tokens get buckets too; what
stops a client from guessing is the lockout: `failures` bad tokens within its period from one client
address → 429 on every token-guarded route from that address for `cooldown_s`. A valid token from
another address is never affected. Behind a reverse proxy every client shares the proxy's address:
put the proxy's own limits in front, or raise these.

Both tables are bounded: past `max_keys` entries, keys whose bucket has refilled (or whose lockout
has expired) are dropped; if an attack keeps every key busy, the oldest half goes (fail open for
those rather than grow without bound).
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Collection, Hashable

from litestar.types import ASGIApp, Receive, Scope, Send

from cse_models.errors import ConfigError
from cse_serving.auth import presented_token
from cse_serving.errors import retry_after_header, send_error
from cse_serving.rates import Rate

Clock = Callable[[], float]


class RateLimiter:
    """Token buckets keyed by whatever identifies a caller."""

    def __init__(self, rate: Rate, *, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self._capacity = float(rate.limit)
        self._per_second = rate.limit / rate.period_s
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: dict[Hashable, list[float]] = {}
        """key → [tokens left, time of the last update]."""

    def hit(self, key: Hashable) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._prune(now)
            self._buckets[key] = [self._capacity - 1.0, now]
            return 0.0
        tokens = min(self._capacity, bucket[0] + (now - bucket[1]) * self._per_second)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self._per_second

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        refill = self._capacity / self._per_second
        self._buckets = {k: b for k, b in self._buckets.items() if now - b[1] < refill}
        if len(self._buckets) >= self._max_keys:
            newest = sorted(self._buckets.items(), key=lambda item: item[1][1])[len(self._buckets) // 2 :]
            self._buckets = dict(newest)


class AuthLockout:
    """Bad-token failures per client address; `failures` of them within its period lock the client out."""

    def __init__(
        self, failures: Rate, cooldown_s: float, *, max_keys: int = 100_000, clock: Clock = time.monotonic
    ) -> None:
        if not cooldown_s > 0:
            raise ConfigError(f"the lockout cool-down must be > 0 s, got {cooldown_s}")
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._max_keys = max_keys
        self._clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def retry_after(self, client: str) -> float:
        """Seconds left of the client's lockout; 0.0 when it is not locked out."""
        until = self._locked_until.get(client)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._locked_until[client]
            return 0.0
        return left

    def record_failure(self, client: str) -> None:
        now = self._clock()
        recent = self._recent.get(client)
        if recent is None:
            if len(self._recent) >= self._max_keys:
                self._prune(now)
            recent = self._recent[client] = deque(maxlen=self.failures.limit)
        recent.append(now)
        if len(recent) == self.failures.limit and now - recent[0] <= self.failures.period_s:
            self._locked_until[client] = now + self.cooldown_s
            del self._recent[client]

    def _prune(self, now: float) -> None:
        window = self.failures.period_s
        self._recent = {k: q for k, q in self._recent.items() if now - q[-1] < window}
        self._locked_until = {k: until for k, until in self._locked_until.items() if until > now}
        if len(self._recent) >= self._max_keys:
            self._recent = dict(sorted(self._recent.items(), key=lambda item: item[1][-1])[len(self._recent) // 2 :])


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def rate_limit_middleware(limiter: RateLimiter, exempt_paths: Collection[str]) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware factory: one bucket per token (by hash), else per client address; 429 with
    Retry-After and the JSON error body when a bucket is empty. `exempt_paths` (the orchestrator's
    probes) are never limited."""
    detail = f"rate limit of {limiter.rate} exceeded for this {{who}}; retry after {{after}} s"

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"] in exempt_paths:
                await app(scope, receive, send)
                return
            authorization = api_key = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value.decode("latin-1")
                elif name == b"x-api-key":
                    api_key = value.decode("latin-1")
            token = presented_token(authorization, api_key)
            key = hashlib.sha256(token.encode()).digest() if token else client_address(scope)
            wait = limiter.hit(key)
            if wait:
                after = retry_after_header(wait)
                who = "token" if token else "client"
                await send_error(send, 429, detail.format(who=who, after=after), [(b"retry-after", after.encode())])
                return
            await app(scope, receive, send)

        return middleware

    return factory
