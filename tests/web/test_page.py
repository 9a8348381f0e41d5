"""The web page (`GET /`) in a real browser: Debian's Chromium driven by Playwright against `cse-serving serve`
on 127.0.0.1, with published forecast models for BTCUSDT and ETHUSDT and the bundled sample as the
server-side kline source. Screenshots at 1280 and 390 px go to tests/artifacts/ (git-ignored).

Playwright's own browser download is not used: .ci/run installs Debian's `chromium` package; where
/usr/bin/chromium is absent the test is skipped."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cse_models.store import ModelStore
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

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def _serving_helpers():
    """tests/serving/serving_helpers.py by path: its forecast model builders and `real_server`."""
    spec = importlib.util.spec_from_file_location("web_serving_helpers", ROOT / "tests/serving/serving_helpers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A real server with BTCUSDT and ETHUSDT forecast models (every head published) → (url, user token)."""
    helpers = _serving_helpers()
    root = tmp_path_factory.mktemp("web")
    store = ModelStore(root / "store")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        version = helpers.version_at()
        model = helpers.forecast_onnx(root / f"{symbol}.onnx")
        store.publish(helpers.forecast_manifest(symbol, version, heads=ALL_HEADS), {"model.onnx": model})
    tokens = TokenStore(root / "home" / "serving.db")
    token = tokens.create("alice")
    tokens.close()
    env = {
        "CSE_HOME": str(root / "home"),
        "CSE_STORE": str(store.root),
        "CSE_SERVING_SOURCE": "sample",
        "CSE_SERVING_WATCH_SECONDS": "0",
    }
    with helpers.real_server(env, "--log-level", "warning") as url:
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
    for path in ("/static/page.js", "/static/vendor/uPlot.iife.min.js", "/static/vendor/uPlot.LICENSE"):
        static = httpx.get(url + path)
        assert static.status_code == 200, path
        assert "max-age=3600" in static.headers["cache-control"]
        assert "default-src 'none'" in static.headers["content-security-policy"]


def test_the_page_shows_prices_forecast_leaderboard_and_scorecard(server, browser_context):
    expect = pytest.importorskip("playwright.sync_api").expect
    url, token = server
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(url + "/")
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("#error")).to_contain_text("token was refused (401)")
    assert "token" not in page.url  # nothing sensitive in the URL
    errors.clear()  # the browser logs the refused request itself

    page.get_by_label("API token").fill(token)
    page.get_by_label("API token").press("Enter")  # keyboard-usable
    chart = page.locator("#chart")
    expect(chart).to_have_attribute("data-symbol", "BTCUSDT")
    assert chart.get_attribute("data-symbol") == "BTCUSDT"
    assert int(chart.get_attribute("data-points")) > 100
    assert page.locator("#chart canvas").count() == 1
    btc_close = chart.get_attribute("data-last-close")
    card = page.locator("#card").inner_text()
    assert "Next close" in card and "USDT" in card and "UTC" in card
    assert page.locator("#direction").is_visible()
    leaderboard = page.locator("#leaderboard tbody").inner_text()
    for head in ("price", "interval", "volatility", "direction"):
        assert head in leaderboard
    assert "published" in leaderboard and "price_baseline" in leaderboard
    assert page.locator("#live tbody tr").count() >= 1
    assert "Version" in page.locator("#model").inner_text()
    assert not page.locator("#error").is_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-1280.png"), full_page=True)

    page.get_by_label("Symbol and interval").select_option("ETHUSDT 1h")
    expect(chart).to_have_attribute("data-symbol", "ETHUSDT")
    assert int(chart.get_attribute("data-points")) > 100
    assert chart.get_attribute("data-last-close") != btc_close

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    wide = page.evaluate(
        "() => [...document.querySelectorAll('body *')]"
        ".filter(e => !e.closest('.scroll') && e.getBoundingClientRect().right > 390)"  # tables scroll inside
        ".map(e => e.tagName + '#' + e.id + '.' + e.className + ':' + e.getBoundingClientRect().right).slice(0, 8)"
    )
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, wide  # no sideways scrolling of the page
    page.screenshot(path=str(ARTIFACTS / "page-390.png"), full_page=True)

    # Reloading keeps the token (sessionStorage) and shows the models again.
    page.reload()
    expect(page.locator("#chart canvas")).to_have_count(1)
    assert errors == []


def test_an_empty_store_says_no_model_is_loaded(tmp_path, browser_context):
    expect = pytest.importorskip("playwright.sync_api").expect
    helpers = _serving_helpers()
    tokens = TokenStore(tmp_path / "home" / "serving.db")
    token = tokens.create("alice")
    tokens.close()
    env = {"CSE_HOME": str(tmp_path / "home"), "CSE_STORE": str(tmp_path / "store"), "CSE_SERVING_WATCH_SECONDS": "0"}
    with helpers.real_server(env, "--log-level", "warning") as url:
        page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
        page.goto(url + "/")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Use token").click()
        expect(page.locator("#error")).to_contain_text("No model is loaded")
        expect(page.get_by_label("Symbol and interval")).to_be_disabled()
