"""The page's read-only views on the app itself (Litestar's TestClient): the leaderboard read from the
manifest, and the public mode (CSE_SERVING_PUBLIC_PAGE) that opens those views — and only those — without
a token."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from web_helpers import published_manifest, serving_helpers

from cse_models.errors import StoreError
from cse_serving.settings import Settings

ALL_HEADS = {"price": True, "interval": True, "volatility": False, "direction": True}
PAGE_VIEWS = ("/leaderboard", "/klines/BTCUSDT/1h?limit=5", "/scorecard/BTCUSDT/1h")
CLOSED = [  # what public mode leaves behind a token: (method, path)
    ("POST", "/predict"),
    ("GET", "/predictions/latest"),
    ("GET", "/models"),
    ("GET", "/models/count"),
    ("GET", "/metrics/deep_learning"),
    ("POST", "/models/reload"),
]


@pytest.fixture
def served(store, tmp_path) -> str:
    """BTCUSDT 1h published with stored price and direction boards → its version."""
    version = serving_helpers.version_at()
    model = serving_helpers.forecast_onnx(tmp_path / "model.onnx")
    store.publish(published_manifest("BTCUSDT", version, heads=ALL_HEADS), {"model.onnx": model})
    return version


def board(client, token: str | None) -> dict:
    response = client.get("/leaderboard", headers=serving_helpers.bearer(token) if token else {})
    assert response.status_code == 200, response.text
    [series] = response.json()["series"]
    return series


def test_the_leaderboard_puts_the_published_model_beside_its_baselines(served, client_factory, tokens) -> None:
    series = board(client_factory(), tokens["user"])
    price = next(h for h in series["heads"] if h["head"] == "price")

    names = ["ensemble_weighted", "cnn", "lstm", "persistence", "drift", "moving_average"]
    assert [r["name"] for r in price["rows"]] == names
    assert [r["name"] for r in price["rows"] if r["published"]] == ["ensemble_weighted"]
    assert {r["kind"] for r in price["rows"][3:]} == {"baseline"}
    assert price["rows"][0]["skill"] == pytest.approx(0.05) and price["rows"][0]["p_value"] == 0.01
    assert (price["rows"][0]["metric"], price["rows"][0]["value"]) == ("mae", 95.0)
    assert (price["complete"], price["publish"], price["reference"]) == (True, True, "persistence")
    assert series["member_weights"] == {"cnn": 0.7, "lstm": 0.3}
    assert series["ensemble"]["method"] == "weighted"
    assert series["ensemble"]["weights"]["direction"] == {"cnn": 0.55, "lstm": 0.45}
    assert series["data_range"] == ["2024-01-01T00:00:00Z", "2024-12-31T23:00:00Z"]
    assert (series["version"], series["selected"]) == (served, "ensemble_weighted")


def test_without_a_stored_board_the_reference_row_follows_from_the_skill(served, client_factory, tokens) -> None:
    """The interval head has only its verdict (skill 0.1 vs trailing_quantiles) and the model's Winkler 300:
    the reference's Winkler is 300 / (1 − 0.1)."""
    interval = next(h for h in board(client_factory(), tokens["user"])["heads"] if h["head"] == "interval")

    assert interval["complete"] is False
    model, reference = interval["rows"]
    assert (model["name"], model["published"], model["value"]) == ("ensemble_weighted", True, 300.0)
    assert (reference["name"], reference["kind"], reference["skill"]) == ("trailing_quantiles", "baseline", 0.0)
    assert reference["value"] == pytest.approx(300.0 / 0.9)


def test_a_withheld_head_keeps_its_verdict_and_reason(served, client_factory, tokens) -> None:
    volatility = next(h for h in board(client_factory(), tokens["user"])["heads"] if h["head"] == "volatility")

    assert (volatility["publish"], volatility["passed"]) == (False, False)
    assert "withheld" in volatility["reason"]
    assert volatility["rows"][0]["value"] is None  # no walk-forward metrics recorded for it


def test_a_model_without_heads_is_listed_with_its_metrics(publish, client_factory, tokens) -> None:
    """A seed-task model (regression: no per-head verdicts) is on the list with an empty board."""
    version = publish("ETHUSDT", "regression")
    series = board(client_factory(), tokens["user"])

    assert (series["symbol"], series["version"], series["heads"], series["ensemble"]) == ("ETHUSDT", version, [], None)
    assert series["metrics"]["skill"] == 0.1 and series["data_range"] is None


def test_the_stored_boards_are_not_repeated_in_the_metrics(served, client_factory, tokens) -> None:
    assert "leaderboards" not in board(client_factory(), tokens["user"])["metrics"]


@pytest.mark.parametrize(
    ("section", "damage", "path"),
    [
        ("metrics", {"leaderboards": {"price": "not a board"}}, "metrics.leaderboards.price must be an object"),
        ("metrics", {"leaderboards": {"direction": {"rows": [{"skill": 1}]}}}, "rows[0].name must be a string"),
        ("ensemble", {"weights": {"price": {"cnn": "heavy"}}}, "ensemble.weights.price.cnn must be a number"),
    ],
)
def test_a_malformed_manifest_section_is_refused_with_its_path(
    store, tmp_path, client_factory, tokens, section, damage, path
) -> None:
    """Manifests are JSON that other code may write: a section that breaks its type is refused when the
    version loads, naming the value (GET /models says why), instead of a view guessing around it."""
    manifest = published_manifest("BTCUSDT", serving_helpers.version_at(), heads=ALL_HEADS)
    model = serving_helpers.forecast_onnx(tmp_path / "model.onnx")
    store.publish(manifest, {"model.onnx": model})
    version_dir = store.version_dir("BTCUSDT", "1h", manifest.version)
    raw = json.loads((version_dir / "manifest.json").read_text())
    raw[section] = {**raw[section], **damage}
    (version_dir / "manifest.json").write_text(json.dumps(raw))

    with pytest.raises(StoreError, match=re.escape(path)):
        store.read_manifest("BTCUSDT", "1h", manifest.version)
    listed = client_factory().get("/models", headers=serving_helpers.bearer(tokens["admin"])).json()
    errors = [(entry.get("last_error") or {}).get("message", "") for entry in listed["models"]]
    assert any(path in error for error in errors), listed


def public(settings: Settings, on: bool) -> Settings:
    return dataclasses.replace(settings, public_page=on, source="sample")


def test_by_default_the_page_views_need_a_token(served, settings, client_factory, tokens) -> None:
    client = client_factory(public(settings, on=False))
    for path in PAGE_VIEWS:
        serving_helpers.assert_error(client.get(path), 401, "API token is required")
        assert client.get(path, headers=serving_helpers.bearer(tokens["user"])).status_code == 200, path


def test_public_mode_opens_the_page_views_without_a_token(served, settings, client_factory) -> None:
    client = client_factory(public(settings, on=True))
    for path in PAGE_VIEWS:
        assert client.get(path).status_code == 200, path
    assert board(client, None)["heads"]


def test_public_mode_still_refuses_a_wrong_token(served, settings, client_factory) -> None:
    client = client_factory(public(settings, on=True))
    response = client.get("/leaderboard", headers=serving_helpers.bearer("not-a-token"))
    serving_helpers.assert_error(response, 401, "unknown or revoked")


@pytest.mark.parametrize(("method", "path"), CLOSED)
def test_public_mode_keeps_predictions_and_admin_behind_a_token(served, settings, client_factory, method, path) -> None:
    client = client_factory(public(settings, on=True))
    body = {"symbol": "BTCUSDT", "interval": "1h"} if method == "POST" else None
    assert client.request(method, path, json=body).status_code == 401


def test_the_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).public_page is False
    assert Settings.from_env({"CSE_SERVING_PUBLIC_PAGE": "on"}).public_page is True
    assert Settings.from_env({"CSE_SERVING_PUBLIC_PAGE": "0"}).public_page is False
