"""The leaderboard and the promotion gate: nothing is promoted on a random walk; the gate's rules and the
leaderboard's JSON / Markdown forms."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from cse_models.config import DataConfig
from cse_models.errors import ConfigError
from cse_models.evaluation import (
    BASELINES,
    Leaderboard,
    WalkForwardConfig,
    baseline_names,
    build_leaderboard,
    evaluate_walk_forward,
    promotion_decision,
    run_walk_forward,
)
from cse_models.features.dataset import compute_features


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
def random_walk_board() -> Leaderboard:
    features = compute_features(random_walk_klines(1400), "mur9")
    return evaluate_walk_forward(
        features, DataConfig(seq_len=12), WalkForwardConfig(n_folds=2), models=("lstm_regressor",), budget="tiny"
    )


def test_nothing_passes_the_promotion_gate_on_a_random_walk(random_walk_board):
    assert {r.name for r in random_walk_board.rows} == {"persistence", "drift", "moving_average", "lstm_regressor"}
    for row in random_walk_board.rows:
        decision = promotion_decision(random_walk_board, row.name)
        assert not decision.publish and not decision.forced, (row.name, decision.reason)
    assert random_walk_board.row("persistence").skill == 0.0


def _board(skill: float, p_better: float) -> Leaderboard:
    features = compute_features(random_walk_klines(700, seed=1), "mur9")
    result = run_walk_forward(
        features,
        DataConfig(seq_len=12),
        WalkForwardConfig(n_folds=2),
        {name: BASELINES.get(name).forecast for name in baseline_names("regression")},
    )
    board = build_leaderboard(result, info={"symbol": "RWALK"})
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
    assert decision.publish is publish and not decision.forced
    assert re.search(reason, decision.reason), decision.reason


def test_forced_publication_is_recorded_with_the_gate_verdict():
    decision = promotion_decision(_board(-0.5, 0.9), "drift", force=True)
    assert decision.publish and decision.forced
    assert decision.reason.startswith("forced publication; the gate said: walk-forward skill -0.5000 ≤ 0")
    with pytest.raises(ConfigError, match="'nope' is not on the leaderboard"):
        promotion_decision(_board(0.1, 0.01), "nope")


def test_leaderboard_round_trips_through_json_and_renders_markdown(random_walk_board):
    data = json.loads(random_walk_board.to_json())
    assert Leaderboard.from_dict(data) == random_walk_board
    assert [r["name"] for r in data["rows"]] == [r.name for r in random_walk_board.rows]
    skills = [r.skill for r in random_walk_board.rows]
    assert skills == sorted(skills, reverse=True)
    markdown = random_walk_board.to_markdown()
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(random_walk_board.rows)  # header + one row per forecaster
    assert "**lstm_regressor**" in markdown and "| persistence | baseline |" in markdown


def test_classification_leaderboard_compares_with_train_class_frequencies():
    features = compute_features(random_walk_klines(900, seed=3), "mur9")
    data_cfg = DataConfig(seq_len=12, task="classification", hold_band=0.004)
    forecasters = {name: BASELINES.get(name).forecast for name in baseline_names("classification")}
    board = build_leaderboard(run_walk_forward(features, data_cfg, WalkForwardConfig(n_folds=2), forecasters))
    assert board.reference == "class_frequencies" and board.dm_loss == "brier"
    assert board.row("class_frequencies").skill == 0.0
    for name in ("majority", "last_move"):  # one-hot guesses lose to calibrated frequencies on noise
        row = board.row(name)
        assert row.skill < 0 and not promotion_decision(board, name).publish
        assert 0 <= row.metrics["accuracy"] <= 1 and np.isfinite(row.metrics["log_loss"])
