"""Rate limits per token (per client address without one), 429 with Retry-After and the JSON error body,
and the lockout of a client that keeps presenting bad tokens — which never locks out anyone else."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest
from serving_helpers import bearer, make_klines

from cse_models.errors import ConfigError
from cse_serving.ratelimit import AuthLockout, Rate, RateLimiter
from cse_serving.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------- the pieces


@pytest.mark.parametrize(
    ("text", "limit", "period"),
    [("600/minute", 600, 60), ("20/min", 20, 60), ("10/second", 10, 1), ("5/10s", 5, 10), ("1000 / hours", 1000, 3600)],
)
def test_rates_read_like_count_per_unit(text, limit, period):
    assert Rate.parse(text, name="rate_limit") == Rate(limit, period)


@pytest.mark.parametrize("text", ["off", "OFF", "0", "none"])
def test_off_disables(text):
    assert Rate.parse(text, name="rate_limit") is None


@pytest.mark.parametrize("text", ["fast", "600", "600/fortnight", "-1/minute", "0/minute"])
def test_unreadable_rates_name_the_setting(text):
    with pytest.raises(ConfigError, match="rate_limit"):
        Rate.parse(text, name="rate_limit")


def test_settings_reject_an_unreadable_rate_from_the_environment():
    with pytest.raises(ConfigError, match="rate_limit"):
        Settings.from_env({"CSE_SERVING_RATE_LIMIT": "lots"})
    assert Settings.from_env({"CSE_SERVING_RATE_LIMIT": "off"}).rate_limit == "off"
    assert Settings.from_env({}).rate_limit == "600/minute"


def test_bucket_allows_a_burst_of_the_limit_then_paces_at_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(Rate(3, 60), clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.hit("a") == pytest.approx(20.0)
    assert limiter.hit("b") == 0.0
    clock.now += 19.9
    assert limiter.hit("a") == pytest.approx(0.1)
    clock.now += 0.1
    assert limiter.hit("a") == 0.0


def test_bucket_table_stays_bounded_under_many_keys():
    clock = FakeClock()
    limiter = RateLimiter(Rate(2, 1), max_keys=100, clock=clock)
    for i in range(1000):
        limiter.hit(i)
        clock.now += 0.001
    assert len(limiter) <= 100


def test_lockout_after_the_failures_within_the_window_then_cooldown():
    clock = FakeClock()
    lockout = AuthLockout(Rate(3, 60), cooldown_s=120, clock=clock)
    for _ in range(2):
        lockout.record_failure("10.0.0.1")
    assert lockout.retry_after("10.0.0.1") == 0.0
    lockout.record_failure("10.0.0.1")
    assert lockout.retry_after("10.0.0.1") == pytest.approx(120)
    assert lockout.retry_after("10.0.0.2") == 0.0
    clock.now += 120
    assert lockout.retry_after("10.0.0.1") == 0.0


def test_failures_spread_wider_than_the_window_never_lock_out():
    clock = FakeClock()
    lockout = AuthLockout(Rate(3, 60), cooldown_s=120, clock=clock)
    for _ in range(10):
        lockout.record_failure("10.0.0.1")
        clock.now += 31
    assert lockout.retry_after("10.0.0.1") == 0.0


# ----------------------------------------------------------------- the app


@pytest.fixture
def limited(publish, client_factory, settings, tokens):
    """An app with 3 requests/minute per caller and a lockout after 3 bad tokens."""
    publish("BTCUSDT", "regression")
    return client_factory(dataclasses.replace(settings, rate_limit="3/minute", auth_lockout="3/minute"))


def _predict(client, token: str):
    return client.post("/predict", json={"symbol": "BTCUSDT", "klines": make_klines()}, headers=bearer(token))


def _assert_429(response, *fragments: str) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["status_code"] == 429
    assert set(response.json()) == {"status_code", "detail"}
    assert 1 <= int(response.headers["retry-after"]) <= 300
    for fragment in fragments:
        assert fragment in response.json()["detail"]


def test_a_token_past_its_limit_gets_429_with_retry_after(limited, tokens):
    assert [_predict(limited, tokens["user"]).status_code for _ in range(3)] == [200, 200, 200]
    response = _predict(limited, tokens["user"])
    _assert_429(response, "rate limit of 3/minute", "token")
    assert tokens["user"] not in response.text


def test_the_limit_is_per_token(limited, tokens):
    for _ in range(3):
        _predict(limited, tokens["user"])
    assert _predict(limited, tokens["user"]).status_code == 429
    assert _predict(limited, tokens["admin"]).status_code == 200


def test_requests_without_a_token_are_limited_per_client(limited):
    assert [limited.get("/metrics").status_code for _ in range(3)] == [200, 200, 200]
    _assert_429(limited.get("/metrics"), "client")


def test_probes_are_never_limited(limited):
    assert {limited.get("/healthz").status_code for _ in range(10)} == {200}
    assert {limited.get("/readyz").status_code for _ in range(10)} == {200}


def test_off_disables_the_limit(publish, client_factory, settings, tokens):
    publish("BTCUSDT", "regression")
    client = client_factory(dataclasses.replace(settings, rate_limit="off"))
    assert {client.get("/models/count", headers=bearer(tokens["user"])).status_code for _ in range(50)} == {200}


def test_the_default_limit_is_generous(client, tokens):
    assert {client.get("/models/count").status_code for _ in range(100)} == {200}


def _as_client(app, address: str, path: str, token: str):
    """One request to a started app from another client address (TestClient always says "testclient")."""

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            return await http.get(path, headers=bearer(token))

    return asyncio.run(call())


def test_bad_tokens_lock_the_client_out_even_with_a_good_token(limited, tokens):
    app = limited.app
    for i in range(3):
        assert _as_client(app, "10.0.0.9", "/models/count", f"guess-{i}").status_code == 401
    response = _as_client(app, "10.0.0.9", "/models/count", tokens["user"])
    _assert_429(response, "bad API tokens")
    assert int(response.headers["retry-after"]) > 60  # the cool-down (300 s), not the rate window


def test_a_lockout_never_locks_out_a_valid_token_from_another_client(limited, tokens):
    for i in range(5):
        limited.get("/models/count", headers=bearer(f"guess-{i}"))
    assert limited.get("/models/count", headers=bearer(tokens["user"])).status_code == 429
    assert _as_client(limited.app, "10.0.0.7", "/models/count", tokens["user"]).status_code == 200


def test_a_missing_token_is_not_a_bad_guess(limited, tokens):
    for _ in range(5):
        assert _as_client(limited.app, "10.0.0.5", "/models/count", "").status_code in (401, 429)
    assert _as_client(limited.app, "10.0.0.5", "/models/count", tokens["user"]).status_code == 200


def test_no_metric_label_or_log_carries_a_token(limited, tokens):
    _predict(limited, tokens["user"])
    limited.get("/models/count", headers=bearer("not-a-token-but-secret"))
    text = limited.get("/metrics").text
    assert tokens["user"] not in text and "not-a-token-but-secret" not in text
