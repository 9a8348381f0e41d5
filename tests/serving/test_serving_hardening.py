"""Hostile or sloppy input gets a JSON 4xx, never a 500; every response carries a request id; the access
log names the token, never shows it."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from serving_helpers import (
    assert_error,
    bearer,
    make_klines,
    manifest_for,
    post_raw,
    real_server,
    regression_onnx,
    version_at,
)

from cse_models.store import open_store
from cse_serving.auth import TokenStore

BODY_ROUTES = ["/predict", "/predictions/deep_learning", "/models/BTCUSDT/1h/pin"]


@pytest.fixture
def client(publish, client_factory, tokens):
    publish("BTCUSDT", "regression")
    client = client_factory()
    client.headers.update(bearer(tokens["admin"]))
    return client


# ----------------------------------------------------------------- F1: undecodable bodies


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_invalid_utf8_in_a_json_string_is_400(client, path):
    assert_error(post_raw(client, path, b'{"symbol": "BTC\xff\xfeUSDT", "version": "x\xc3"}'), 400, "UTF-8")


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_invalid_utf8_outside_a_string_is_400(client, path):
    assert_error(post_raw(client, path, b'{"symbol": "BTCUSDT"\xff}'), 400)


@pytest.mark.parametrize("path", BODY_ROUTES)
@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_400(client, path, depth):
    nested = b"[" * depth + b"]" * depth
    assert_error(post_raw(client, path, b'{"data": ' + nested + b', "klines": ' + nested + b"}"), 400, "deep")


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_deeply_nested_object_in_an_ignored_field_is_400(client, path):
    depth = 5000
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    assert_error(post_raw(client, path, b'{"pad": ' + nested + b', "version": "latest"}'), 400, "deep")


# ----------------------------------------------------------------- F8: no silent coercion


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
def test_quoted_number_in_a_kline_is_422_naming_the_field(client, field):
    klines = make_klines()
    klines[2][field] = str(klines[2][field])
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines})
    assert_error(response, 422, f"klines[2].{field}", "number")


def test_quoted_30000_is_not_read_as_a_price(client):
    klines = make_klines()
    klines[5]["close"] = "30000"
    assert_error(client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines}), 422, "klines[5].close")


def test_quoted_open_time_is_422(client):
    klines = make_klines()
    klines[1]["open_time"] = str(klines[1]["open_time"])
    assert_error(client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines}), 422, "klines[1].open_time")


def test_quoted_boolean_is_422(client):
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": make_klines(), "members": "true"})
    assert_error(response, 422, "members", "true or false")


def test_quoted_number_in_the_seed_endpoint_is_422(client):
    klines = make_klines(alias=True)
    klines[0]["volume"] = "12.5"
    response = client.post("/predictions/deep_learning", json={"data": klines, "symbol": "BTCUSDT"})
    assert_error(response, 422, "data[0].volume")


def test_quoted_number_in_a_batch_is_422(client):
    klines = make_klines()
    klines[3]["low"] = "99"
    body = {"requests": [{"symbol": "BTCUSDT", "klines": make_klines()}, {"symbol": "BTCUSDT", "klines": klines}]}
    assert_error(client.post("/predict", json=body), 422, "requests[1].klines[3].low")


def test_a_non_numeric_string_stays_a_400_type_error(client):
    klines = make_klines()
    klines[1]["open"] = "abc"
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines})
    assert_error(response, 400, "Expected `float`, got `str`", "klines[1].open")


def test_seed_aliases_and_extra_fields_still_decode(client):
    klines = make_klines(alias=True)
    response = client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines})
    assert response.status_code == 200, response.text
    assert response.json()["prediction"]["close"] == pytest.approx(klines[-1]["close"] + 0.5, rel=1e-6)


def test_integers_are_still_accepted_for_prices(client):
    klines = [{**row, "volume": int(row["volume"])} for row in make_klines()]
    assert client.post("/predict", json={"symbol": "BTCUSDT", "klines": klines}).status_code == 200


# ----------------------------------------------------------------- B6: request ids, access log


def test_every_response_carries_a_generated_request_id(client):
    first, second = client.get("/healthz"), client.get("/models")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(len(rid) == 16 and int(rid, 16) >= 0 for rid in ids)
    assert ids[0] != ids[1]


def test_a_sane_client_request_id_is_returned(client):
    response = client.get("/models", headers={"X-Request-ID": "trace-42.a:b_c"})
    assert response.headers["x-request-id"] == "trace-42.a:b_c"


@pytest.mark.parametrize("raw", ["has space", "x" * 129, "line\tbreak", "\xfcn\xefcode".encode("latin-1")])
def test_an_insane_client_request_id_is_replaced(client, raw):
    response = client.get("/healthz", headers={"X-Request-ID": raw})
    assert response.headers["x-request-id"] != raw
    assert len(response.headers["x-request-id"]) == 16


def test_error_responses_carry_the_request_id_too(client):
    response = client.post("/predict", json={"symbol": "BTCUSDT"}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert len(response.headers["x-request-id"]) == 16


class _Records(logging.Handler):
    """Collects records of one logger (Litestar's logging setup replaces the root handlers caplog uses)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("cse_serving", "litestar", "uvicorn")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_access_log_names_the_token_never_shows_it(publish, client_factory, tokens, settings, records):
    publish("BTCUSDT", "regression")
    client = client_factory(dataclasses.replace(settings, access_log=True))
    ok = client.post(
        "/predict",
        json={"symbol": "BTCUSDT", "klines": make_klines()},
        headers={**bearer(tokens["user"]), "X-Request-ID": "req-1"},
    )
    assert ok.status_code == 200
    client.get("/models", headers=bearer(tokens["user"] + "x"))
    lines = [r.getMessage() for r in records.records if r.name == "cse_serving.access"]
    assert any(line.startswith("req-1 POST /predict 200 ") and line.endswith("token=alice") for line in lines), lines
    assert any(" GET /models 401 " in line and line.endswith("token=-") for line in lines), lines
    assert not any(tokens["user"] in r.getMessage() for r in records.records)


def test_access_log_is_off_by_default(client, records):
    client.get("/healthz")
    assert not [r for r in records.records if r.name == "cse_serving.access"]


def test_no_body_error_detail_echoes_bytes_beyond_a_short_reason(client):
    body = assert_error(post_raw(client, "/predict", b'{"symbol": "' + b"\xff" * 5000 + b'"}'), 400)
    assert len(json.dumps(body)) < 300


# ----------------------------------------------------------------- F7: read deadlines on a real server

HEADER_TIMEOUT_S = 1.0
SLACK_S = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[int, str]]:
    """`cse-serving serve` with 1 s read deadlines and room for 4 connections → (port, user token)."""
    root = tmp_path_factory.mktemp("deadlines")
    store = open_store(root / "store")
    store.publish(manifest_for("BTCUSDT", "regression", version_at()), {"model.onnx": regression_onnx(root / "m.onnx")})
    tokens = TokenStore(root / "home" / "serving.db")
    token = tokens.create("alice")
    tokens.close()
    env = {"CSE_HOME": str(root / "home"), "CSE_STORE": str(store.root)}
    limits = ["--header-timeout", "1", "--body-timeout", "1", "--keep-alive", "4", "--limit-concurrency", "4"]
    with real_server(env, "--log-level", "warning", *limits) as url:
        yield int(url.rsplit(":", 1)[1]), token


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=HEADER_TIMEOUT_S + SLACK_S + 5)
    return sock


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took."""
    start, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass  # closed with our unread bytes in its buffer: a reset instead of a FIN
    return data, time.monotonic() - start


def _request(method: str, path: str, token: str, body: bytes = b"", length: int | None = None) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) if length is None else length}\r\n\r\n"
    ).encode() + body


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(server):
    port, _ = server
    with _connect(port) as sock:
        data, seconds = _read_until_closed(sock)
    assert data == b""
    assert HEADER_TIMEOUT_S * 0.8 <= seconds <= HEADER_TIMEOUT_S + SLACK_S


def test_half_sent_headers_get_a_json_408_and_the_connection_closes(server):
    port, _ = server
    with _connect(port) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        data, seconds = _read_until_closed(sock)
    assert seconds <= HEADER_TIMEOUT_S + SLACK_S
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert json.loads(body)["status_code"] == 408


def test_trickled_headers_cannot_stretch_the_deadline(server):
    port, _ = server
    start = time.monotonic()
    with _connect(port) as sock:
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass  # closed under our feet: the point
        data, _ = _read_until_closed(sock)
    assert time.monotonic() - start <= HEADER_TIMEOUT_S + SLACK_S
    assert b" 200 " not in data


def test_a_half_sent_body_is_closed_after_the_body_timeout(server):
    port, token = server
    with _connect(port) as sock:
        sock.sendall(_request("POST", "/predict", token, b'{"symbol": "BTC', length=1000))
        data, seconds = _read_until_closed(sock)
    assert seconds <= HEADER_TIMEOUT_S + SLACK_S
    assert b" 200 " not in data


def test_a_kept_alive_connection_outlives_pauses_longer_than_the_header_timeout(server):
    port, token = server
    body = json.dumps({"symbol": "BTCUSDT", "klines": make_klines()}).encode()
    with _connect(port) as sock:
        for _ in range(2):
            sock.sendall(_request("POST", "/predict", token, body))
            response = b""
            while b"\r\n\r\n" not in response or len(response.partition(b"\r\n\r\n")[2]) < _length(response):
                response += sock.recv(65536)
            assert response.startswith(b"HTTP/1.1 200 "), response[:200]
            time.sleep(HEADER_TIMEOUT_S * 1.5)


def _length(response: bytes) -> int:
    for line in response.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_past_the_concurrency_limit_requests_get_a_json_503(server):
    port, _ = server
    idle = [_connect(port) for _ in range(4)]
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        for sock in idle:
            sock.close()
    assert response.status_code == 503
    assert response.json() == {"status_code": 503, "detail": response.json()["detail"]}
    assert response.headers["retry-after"] == "1"


def test_bytes_that_are_not_http_get_a_json_400(server):
    port, _ = server
    with _connect(port) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        data, _ = _read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/json" in head
    assert json.loads(body)["status_code"] == 400
