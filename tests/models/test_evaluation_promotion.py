"""The leaderboards and the promotion gate: no head that a random walk leaves unpredictable is promoted; the
gate's rules and the leaderboards' JSON / Markdown forms."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from cse_models.config import DataConfig
from cse_models.datasets.segments import compute_features
from cse_models.errors import ConfigError
from cse_models.evaluation import (
    BASELINES,
    Leaderboard,
    Leaderboards,
    WalkForwardConfig,
    baseline_names,
    build_leaderboard,
    evaluate_walk_forward,
    head_decisions,
    promotion_decision,
    run_walk_forward,
)
from cse_models.features.sets import get_feature_set
from cse_models.heads.layout import HEADS
from cse_models.specs import ModelSpec

MODEL = ModelSpec("lstm", "lstm_regressor", "demo")


def random_walk_klines(n: int, seed: int = 7) -> pl.DataFrame:
    """Hourly candles whose log close is a Gaussian random walk (σ = 0.8 %): nothing here is predictable."""
    rng = np.random.default_rng(seed)
    close = 20_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.008, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wiggle = np.abs(rng.normal(0.0, 0.002, (2, n)))
    start = np.datetime64("2022-01-01T00:00", "ms").astype(np.int64)
    return pl.DataFrame(
        {
            "open_time": pl.Series(start + np.arange(n) * 3_600_000).cast(pl.Datetime("ms", "UTC")),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wiggle[0]),
            "low": np.minimum(open_, close) * (1 - wiggle[1]),
            "close": close,
            "volume": rng.uniform(10, 100, n),
        }
    )


@pytest.fixture(scope="module")
def random_walk_boards() -> Leaderboards:
    """The published setup (`DataConfig()`: every head) with a small LSTM retrained per fold."""
    data_cfg = DataConfig()
    features = compute_features(random_walk_klines(1400 + get_feature_set(data_cfg.feature_set).warmup), "stationary")
    return evaluate_walk_forward(features, data_cfg, WalkForwardConfig(n_folds=2), models=[MODEL], budget="tiny")


def test_no_price_or_direction_forecast_passes_the_gate_on_a_random_walk(random_walk_boards):
    assert random_walk_boards.heads == HEADS
    price = random_walk_boards["price"]
    assert {r.name for r in price.rows} == {"persistence", "drift", "moving_average", "ridge_returns", MODEL.name}
    for head in HEADS:
        board = random_walk_boards[head]
        assert board.head == head and board.row(board.reference).skill == 0.0
        assert board.row(MODEL.name).kind == "model"
    for head in ("price", "direction"):  # the next move of a random walk is unpredictable
        board = random_walk_boards[head]
        for row in board.rows:
            decision = promotion_decision(board, row.name)
            assert not decision.publish and not decision.passed and not decision.forced, (head, row.name)
    verdicts = head_decisions(random_walk_boards, MODEL.name)
    assert set(verdicts) == set(HEADS)
    assert not verdicts["price"].publish and not verdicts["direction"].publish


def _board(skill: float, p_better: float) -> Leaderboard:
    features = compute_features(random_walk_klines(700, seed=1), "mur9")
    result = run_walk_forward(
        features,
        DataConfig.seed(seq_len=12),
        WalkForwardConfig(n_folds=2),
        {name: BASELINES.get(name).forecaster() for name in baseline_names("regression")},
    )
    board = build_leaderboard(result, "price", info={"symbol": "RWALK"})
    row = board.row("drift")
    row = replace(row, skill=skill, dm=replace(row.dm, p_value_model_better=p_better))
    return replace(board, rows=tuple(row if r.name == "drift" else r for r in board.rows))


@pytest.mark.parametrize(
    ("skill", "p", "publish", "reason"),
    [
        (0.02, 0.01, True, r"skill \+0.0200 > 0 and DM p-value 0.01 ≤ 0.05"),
        (0.02, 0.2, False, r"not significantly better than persistence"),
        (-0.01, 0.001, False, r"skill -0.0100 ≤ 0: drift does not beat persistence"),
        (0.0, 0.001, False, r"≤ 0"),
    ],
)
def test_promotion_needs_positive_skill_and_a_significant_dm_test(skill, p, publish, reason):
    decision = promotion_decision(_board(skill, p), "drift", max_p_value=0.05)
    assert decision.publish is publish and decision.passed is publish and not decision.forced
    assert re.search(reason, decision.reason), decision.reason


def test_forced_publication_is_recorded_with_the_gate_verdict():
    decision = promotion_decision(_board(-0.5, 0.9), "drift", force=True)
    assert decision.publish and decision.forced and not decision.passed
    assert decision.reason.startswith("forced publication; the gate said: walk-forward skill -0.5000 ≤ 0")
    with pytest.raises(ConfigError, match="'nope' is not on the leaderboard"):
        promotion_decision(_board(0.1, 0.01), "nope")


def test_leaderboards_round_trip_through_json_and_render_markdown(random_walk_boards, tmp_path):
    data = json.loads(random_walk_boards.to_json())
    assert list(data) == list(HEADS)
    assert Leaderboards.from_dict(data) == random_walk_boards
    for head, board in random_walk_boards.boards.items():
        assert Leaderboard.from_dict(data[head]) == board
        assert [r["name"] for r in data[head]["rows"]] == [r.name for r in board.rows]
        skills = [r.skill for r in board.rows]
        assert skills == sorted(skills, reverse=True)
        markdown = board.to_markdown()
        table = [line for line in markdown.splitlines() if line.startswith("| ")]
        assert len(table) == 1 + len(board.rows)  # header + one row per forecaster
        assert f"**{MODEL.name}**" in markdown and f"| {board.reference} | baseline |" in markdown
        assert f"{head} head" in markdown
    random_walk_boards.save(tmp_path)
    assert Leaderboards.from_dict(json.loads((tmp_path / "leaderboard.json").read_text())) == random_walk_boards
    for head in HEADS:
        assert (
            Leaderboard.from_dict(json.loads((tmp_path / head / "leaderboard.json").read_text()))
            == (random_walk_boards[head])
        )


def test_classification_leaderboard_compares_with_train_class_frequencies():
    features = compute_features(random_walk_klines(900, seed=3), "mur9")
    data_cfg = DataConfig.seed(seq_len=12, task="classification", hold_band=0.004)
    forecasters = {name: BASELINES.get(name).forecaster() for name in baseline_names("classification")}
    result = run_walk_forward(features, data_cfg, WalkForwardConfig(n_folds=2), forecasters)
    board = build_leaderboard(result, "direction")
    assert board.reference == "class_frequencies" and board.dm_loss == "brier"
    assert board.row("class_frequencies").skill == 0.0
    for name in ("majority", "last_move"):  # one-hot guesses lose to calibrated frequencies on noise
        row = board.row(name)
        assert row.skill < 0 and not promotion_decision(board, name).publish
        assert 0 <= row.metrics["accuracy"] <= 1 and np.isfinite(row.metrics["log_loss"])
