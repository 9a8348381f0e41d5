"""A served direction is scored by the label training gave the same move: serving's realized class and the
training targets (`heads.targets.head_targets` for the forecast task, `features.windows.classification_targets`
for the seeds' classification task) agree window by window, on bands chosen so that some windows sit exactly
on an edge — where computing the same threshold another way (r against b·σ instead of r / σ against b) flips
a label by rounding (for the classification band, log(1 ± b) bounds on the log return happen to round like
the simple return on these closes, so its edges are plain ones).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from test_serving_scorecard import HOUR_MS, T0, Clock, forecast_answer, kline

from cse_models.features.windows import classification_targets
from cse_models.heads.labels import BUY, HOLD, SELL, HoldBand
from cse_models.heads.scales import SIGMA_FLOOR
from cse_models.heads.targets import head_targets
from cse_serving.scorecard import Scorecard

SEQ_LEN, HORIZON = 24, 3
NAMES = ("rv_24", "range_mean_24")
ROWS = 600


def segment(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random-walk segment: closes, highs, lows `[rows]` and raw features `[rows, 2]` float32 (as training
    keeps them), with frozen-price rows whose trailing volatility is 0 (σ floored)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, ROWS)))
    raw = np.column_stack([np.abs(rng.normal(0.004, 0.002, ROWS)), np.full(ROWS, 0.01)]).astype(np.float32)
    raw[::37, 0] = 0.0
    return close, close * 1.002, close * 0.998, np.asfortranarray(raw)


def edge_bands(moves: np.ndarray, fragile: np.ndarray | None = None, count: int = 8) -> list[float]:
    """Bands equal to the size of some windows' own moves, so those windows sit exactly on an edge; half of
    them `fragile` ones (`[n]` bool) when given: where another way of computing the threshold rounds
    differently."""
    rng = np.random.default_rng(1)
    chosen = rng.choice(np.flatnonzero(fragile), count // 2, replace=False) if fragile is not None else []
    picks = [*chosen, *rng.choice(moves.size, count - len(chosen), replace=False)]
    return [float(abs(moves[k])) for k in picks]


def last_rows() -> np.ndarray:
    """Row t of each window's last close (the target row is t + HORIZON)."""
    return np.arange(ROWS - SEQ_LEN - HORIZON + 1) + SEQ_LEN - 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_serving_labels_a_forecast_move_as_training_did(seed: int) -> None:
    close, high, low, raw = segment(seed)
    targets = head_targets(close, high, low, raw, NAMES, SEQ_LEN, HORIZON, 0.5)
    z, rows = targets.z, last_rows()
    fragile = np.abs(z) * targets.sigma != np.abs(targets.log_return)  # r against b·σ would round otherwise

    for band in [0.5, *edge_bands(z, fragile)]:
        training = head_targets(close, high, low, raw, NAMES, SEQ_LEN, HORIZON, band).label
        serving = [
            HoldBand.in_sigmas(band, rv_24=float(raw[t, 0]), horizon=HORIZON).label(close[t], close[t + HORIZON])
            for t in rows
        ]
        assert np.array_equal(serving, training), band
        assert (np.abs(z) == band).any() or band == 0.5  # some window is exactly on the edge
    assert set(targets.label) == {SELL, HOLD, BUY}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_serving_labels_a_classification_move_as_training_did(seed: int) -> None:
    close, _, _, _ = segment(seed)
    rows = last_rows()
    simple = close[rows + HORIZON] / close[rows] - 1.0

    for band in [0.002, *edge_bands(simple)]:
        training = classification_targets(close, SEQ_LEN, HORIZON, band)
        serving = [HoldBand.simple_return(band).label(close[t], close[t + HORIZON]) for t in rows]
        assert np.array_equal(serving, training), band
    assert set(classification_targets(close, SEQ_LEN, HORIZON, 0.002)) == {SELL, HOLD, BUY}


def test_the_realized_class_stored_by_the_scorecard_is_the_training_label(tmp_path: Path) -> None:
    """Through the store: the band recorded when the forecast is served, the close observed when its candle
    closes, the class read back from the table."""
    close, high, low, raw = segment(0)
    rows = last_rows()[:120]
    targets = head_targets(close, high, low, raw, NAMES, SEQ_LEN, HORIZON, 0.5)
    z = targets.z[: len(rows)]
    band = edge_bands(z, (np.abs(targets.z) * targets.sigma != np.abs(targets.log_return))[: len(rows)], 2)[0]
    labels = head_targets(close, high, low, raw, NAMES, SEQ_LEN, HORIZON, band).label
    clock = Clock(T0)
    scorecard = Scorecard(tmp_path / "scorecard.db", clock=clock)
    for i, t in enumerate(rows):
        clock.ms = T0 + i * HOUR_MS - HOUR_MS // 2
        answer = forecast_answer(T0 + i * HOUR_MS, 101.0, last_close=float(close[t]))
        assert scorecard.record(answer, hold_band=HoldBand.in_sigmas(band, float(raw[t, 0]), HORIZON))
    clock.ms = T0 + (len(rows) + 1) * HOUR_MS
    assert scorecard.observe("BTCUSDT", "1h", [kline(T0 + i * HOUR_MS, close[t + HORIZON]) for i, t in enumerate(rows)])
    scorecard.close()

    with sqlite3.connect(tmp_path / "scorecard.db") as conn:
        stored = [c for (c,) in conn.execute("SELECT realized_class FROM predictions ORDER BY target_ms")]
    assert stored == labels[: len(rows)].tolist()
    assert (np.abs(z) == band).any()


def test_a_band_in_sigmas_scales_with_the_horizon_and_is_floored() -> None:
    band = HoldBand.in_sigmas(0.5, rv_24=0.02, horizon=4)  # σ = 0.02·√4 = 0.04: Hold for |log return| ≤ 0.02

    assert band.sigma == pytest.approx(0.04)
    assert [band.label(100.0, 100.0 * np.exp(r)) for r in (-0.03, -0.01, 0.0, 0.01, 0.03)] == [0, 1, 1, 1, 2]
    assert HoldBand.in_sigmas(0.5, rv_24=0.0).sigma == SIGMA_FLOOR


def test_a_classification_band_reads_the_simple_return() -> None:
    band = HoldBand.simple_return(0.002)  # Buy when close/last − 1 > 0.002, Sell when < −0.002

    assert [band.label(1.0, close) for close in (1.0021, 1.0019, 0.9981, 0.9979)] == [2, 1, 1, 0]
