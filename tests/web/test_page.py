"""The web page (`GET /`) in a real browser: Debian's Chromium driven by Playwright against `cse-serving serve`
on 127.0.0.1, with published forecast models for BTCUSDT and ETHUSDT (their manifests carry stored leaderboards
with baselines and ensemble weights), a live scorecard holding scored BTCUSDT predictions, and the bundled sample
as the server-side kline source. Screenshots at 1280 and 390 px go to tests/artifacts/ (git-ignored).

Playwright's own browser download is not used: .ci/run installs Debian's `chromium` package; where
/usr/bin/chromium is absent the test is skipped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from web_helpers import fill_scorecard, published_manifest, serving_helpers

from cse_models.store import ModelStore, open_store
from cse_serving.auth import TokenStore

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ALL_HEADS = {"price": True, "interval": True, "volatility": True, "direction": True}
SAMPLE_LAST_CLOSE = {"BTCUSDT": 37_584.76, "ETHUSDT": 2_620.87}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def published_store(root: Path) -> tuple[ModelStore, dict[str, str]]:
    """BTCUSDT and ETHUSDT forecast models (every head published) → the store and each symbol's version;
    BTCUSDT's predictions of the last day are in the live scorecard, all scored."""
    store = open_store(root / "store")
    versions = {}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        versions[symbol] = serving_helpers.version_at()
        model = serving_helpers.forecast_onnx(root / f"{symbol}.onnx")
        store.publish(published_manifest(symbol, versions[symbol], heads=ALL_HEADS), {"model.onnx": model})
    fill_scorecard(root / "home" / "scorecard.db", "BTCUSDT", versions["BTCUSDT"], base=SAMPLE_LAST_CLOSE["BTCUSDT"])
    return store, versions


def server_env(root: Path, store: ModelStore, **extra: str) -> dict[str, str]:
    return {
        "CSE_HOME": str(root / "home"),
        "CSE_STORE": str(store.root),
        "CSE_SERVING_SOURCE": "sample",
        "CSE_SERVING_WATCH_SECONDS": "0",
        **extra,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A real server with the published models and the scored BTCUSDT predictions → (url, user token)."""
    root = tmp_path_factory.mktemp("web")
    store, _ = published_store(root)
    tokens = TokenStore(root / "home" / "serving.db")
    token = tokens.create("alice")
    tokens.close()
    with serving_helpers.real_server(server_env(root, store), "--log-level", "warning") as url:
        yield url, token


@pytest.fixture
def browser_context(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def test_the_page_and_its_files_carry_a_csp_and_caching_headers(server):
    url, _ = server
    page = httpx.get(url + "/")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache"
    assert "<script>" not in page.text  # no inline script
    for path in (
        "/static/page.js",
        "/static/charts.js",
        "/static/vendor/uPlot.iife.min.js",
        "/static/vendor/uPlot.LICENSE",
    ):
        static = httpx.get(url + path)
        assert static.status_code == 200, path
        assert "max-age=3600" in static.headers["cache-control"]
        assert "default-src 'none'" in static.headers["content-security-policy"]


def console_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, button')]
    .filter(e => !(e.labels && e.labels.length) && !e.textContent.trim() && !e.getAttribute('aria-label'))
    .map(e => e.outerHTML)"""

OVERFLOWING = """() => [...document.querySelectorAll('body *')]
    .filter(e => !e.closest('.scroll') && e.getBoundingClientRect().right > 390)
    .map(e => e.tagName + '#' + e.id + '.' + e.className + ':' + e.getBoundingClientRect().right).slice(0, 8)"""


def test_the_page_shows_prices_forecast_leaderboard_and_scorecard(server, browser_context):
    expect = pytest.importorskip("playwright.sync_api").expect
    url, token = server
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    errors = console_errors(page)

    page.goto(url + "/")
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("#error")).to_contain_text("token was refused (401)")
    assert "token" not in page.url  # nothing sensitive in the URL
    errors.clear()  # the browser logs the refused request itself

    page.get_by_label("API token").fill(token)
    page.get_by_label("API token").press("Enter")  # keyboard-usable
    chart = page.locator("#chart")
    expect(chart).to_have_attribute("data-forecast", "drawn")
    assert chart.get_attribute("data-symbol") == "BTCUSDT"
    assert int(chart.get_attribute("data-points")) == 120
    assert int(chart.get_attribute("data-candles")) == 120  # every candle painted by the draw hook
    assert page.locator("#chart canvas").count() == 1
    assert "predicted next close" in chart.get_attribute("aria-label")
    btc_close = chart.get_attribute("data-last-close")
    card = page.locator("#card").inner_text()
    assert "Next close" in card and "USDT" in card and "UTC" in card and "Volatility" in card
    assert "Prices in USDT" in page.locator("#chart-heading + .note").inner_text()
    assert page.locator("#direction").is_visible()

    leaderboard = page.locator("#leaderboard tbody").inner_text()
    for head in ("price", "interval", "volatility", "direction"):
        assert head in leaderboard
    for forecaster in ("★ ensemble_weighted", "cnn", "lstm", "persistence", "drift", "class_frequencies", "majority"):
        assert forecaster in leaderboard, forecaster
    assert "naive baseline" in leaderboard and "✔ published" in leaderboard
    assert page.locator("#leaderboard tr.published").count() == 4  # one published model per head
    weights = page.locator("#weights").inner_text()
    assert "ensemble_weighted (weighted)" in weights and "price: cnn 70 %, lstm 30 %; direction: cnn 55 %" in weights

    live = page.locator("#live tbody").inner_text()
    assert "24h" in live and "24" in live
    live_chart = page.locator("#live-chart")
    assert int(live_chart.get_attribute("data-points")) == 24
    assert page.locator("#live-chart canvas").count() == 1
    model = page.locator("#model").inner_text()
    assert "Version" in model and "Data range" in model and "2024" in model
    assert not page.locator("#error").is_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-1280.png"), full_page=True)

    select = page.get_by_label("Symbol and interval")
    select.focus()
    page.keyboard.press("ArrowDown")  # the picker works from the keyboard
    expect(chart).to_have_attribute("data-symbol", "ETHUSDT")
    expect(chart).to_have_attribute("data-forecast", "drawn")
    assert int(chart.get_attribute("data-candles")) == 120
    assert chart.get_attribute("data-last-close") != btc_close
    expect(live_chart).to_have_attribute("data-points", "0")  # no ETHUSDT prediction scored
    assert "none scored yet" in page.locator("#live-chart-heading").inner_text()

    page.set_viewport_size({"width": 390, "height": 844})
    select.select_option("BTCUSDT 1h")
    expect(chart).to_have_attribute("data-symbol", "BTCUSDT")
    expect(live_chart).to_have_attribute("data-points", "24")
    expect(chart).to_have_attribute("data-candles", "48")  # fewer, wider candles on a phone
    page.wait_for_timeout(300)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, page.evaluate(OVERFLOWING)
    assert page.evaluate("() => document.querySelector('#chart canvas').getBoundingClientRect().right") <= 390
    page.screenshot(path=str(ARTIFACTS / "page-390.png"), full_page=True)

    # Reloading keeps the token (sessionStorage) and shows the models again.
    page.reload()
    expect(page.locator("#chart canvas")).to_have_count(1)
    assert errors == []


def test_the_public_page_shows_history_without_a_token(tmp_path, browser_context):
    """CSE_SERVING_PUBLIC_PAGE on: candles, leaderboard and scorecard without a token and without a refused
    request in the console; the forecast card asks for a token (/predict keeps it)."""
    expect = pytest.importorskip("playwright.sync_api").expect
    store, _ = published_store(tmp_path)
    env = server_env(tmp_path, store, CSE_SERVING_PUBLIC_PAGE="1")
    with serving_helpers.real_server(env, "--log-level", "warning") as url:
        page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
        errors = console_errors(page)
        page.goto(url + "/")
        chart = page.locator("#chart")
        expect(chart).to_have_attribute("data-candles", "120")
        assert chart.get_attribute("data-forecast") == "none"
        assert "needs an API token" in page.locator("#card").inner_text()
        assert "★ ensemble_weighted" in page.locator("#leaderboard tbody").inner_text()
        assert int(page.locator("#live-chart").get_attribute("data-points")) == 24
        assert "public view" in page.locator("#message").inner_text()
        assert httpx.post(url + "/predict", json={"symbol": "BTCUSDT"}).status_code == 401
        assert errors == []


def test_a_failing_call_says_what_failed(tmp_path, browser_context):
    """No server-side kline source: the candles' call fails with the server's reason, the rest still shows."""
    expect = pytest.importorskip("playwright.sync_api").expect
    store, _ = published_store(tmp_path)
    tokens = TokenStore(tmp_path / "home" / "serving.db")
    token = tokens.create("alice")
    tokens.close()
    env = server_env(tmp_path, store, CSE_SERVING_SOURCE="none")
    with serving_helpers.real_server(env, "--log-level", "warning") as url:
        page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
        page.goto(url + "/")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Use token").click()
        expect(page.locator("#error")).to_contain_text("Could not load the recent candles (422)")
        expect(page.locator("#error")).to_contain_text("no kline source is configured")
        assert page.locator("#chart").get_attribute("aria-label").startswith("No candles")
        assert "ensemble_weighted" in page.locator("#leaderboard tbody").inner_text()


def test_an_empty_store_says_no_model_is_loaded(tmp_path, browser_context):
    expect = pytest.importorskip("playwright.sync_api").expect
    tokens = TokenStore(tmp_path / "home" / "serving.db")
    token = tokens.create("alice")
    tokens.close()
    env = {"CSE_HOME": str(tmp_path / "home"), "CSE_STORE": str(tmp_path / "store"), "CSE_SERVING_WATCH_SECONDS": "0"}
    with serving_helpers.real_server(env, "--log-level", "warning") as url:
        page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
        page.goto(url + "/")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Use token").click()
        expect(page.locator("#error")).to_contain_text("No model is loaded")
        expect(page.get_by_label("Symbol and interval")).to_be_disabled()
