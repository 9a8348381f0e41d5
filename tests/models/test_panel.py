"""The panel: calendar folds across symbols (and the per-series cuts they replace, caught leaking), the
pooled segment a global member learns from, and the panel walk-forward's plan and refusals."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.pooled import pool_segments, symbol_weights
from cse_models.datasets.segments import build_segments, compute_features, epoch_ms, fit_feature_scaler
from cse_models.errors import ConfigError
from cse_models.evaluation.panel import GlobalFits, PanelPlan, PanelSymbol, plan_panel
from cse_models.scoring.folds import WalkForwardConfig, build_fold_data, walk_forward_folds
from cse_models.scoring.leakage import LeakageError, Stamped, assert_no_panel_lookahead
from cse_models.specs import ModelSpec
from cse_models.training.batches import epoch_batches, epoch_order
from cse_models.training.config import budget

DATA = DataConfig(seq_len=12)
CONFIG = WalkForwardConfig(n_folds=2)
LIGHTGBM = ModelSpec("lightgbm", "lightgbm", "demo")


def _features(symbol: str, rows: int, end_offset: int = 0) -> pl.DataFrame:
    klines, _ = clean_klines(SampleSource().fetch(symbol, "1h", None, None), "1h")
    return compute_features(klines.head(klines.height - end_offset).tail(rows), DATA.feature_set)


@pytest.fixture(scope="module")
def panel() -> dict[str, pl.DataFrame]:
    """Two symbols whose spans differ: ETH ends 800 hours before BTC, so cuts by rows are not cuts by date."""
    return {"BTCUSDT": _features("BTCUSDT", 2200), "ETHUSDT": _features("ETHUSDT", 1500, end_offset=800)}


def _times(frame: pl.DataFrame) -> np.ndarray:
    return epoch_ms(frame.get_column("open_time"))


def test_calendar_folds_train_no_symbol_after_any_symbols_test_start(panel):
    plan = plan_panel({s: PanelSymbol(f) for s, f in panel.items()}, DATA, CONFIG)
    assert set(plan.scored) == set(panel) and not plan.excluded
    for fold in plan.folds:
        learners = plan.learners[fold.index]
        assert set(learners) == set(panel)
        last_learned = max(_times(panel[s])[rows["val"].stop - 1] for s, rows in learners.items())
        for symbol, folds in plan.scored.items():
            for scored in (f for f in folds if f.index == fold.index):
                first_tested = _times(panel[symbol])[scored.test.start]
                assert last_learned + DATA.seq_len * 3_600_000 <= first_tested  # the purge, in hours
    ends = {s: int(_times(f)[-1]) for s, f in panel.items()}
    late = plan.folds[-1].bounds["test"][0]
    assert ends["ETHUSDT"] < late  # ETH ended before the last test block: it is scored in the earlier fold only
    assert [f.index for f in plan.scored["ETHUSDT"]] == [0] and [f.index for f in plan.scored["BTCUSDT"]] == [0, 1]


def test_per_series_cuts_put_another_symbols_training_rows_inside_a_test_block(panel):
    """The control: each series cut at its own rows (what `walk_forward_folds` does per symbol) trains fold
    k on BTC rows from after ETH's fold-k test block began."""
    folds = {s: walk_forward_folds(f.height, DATA, CONFIG) for s, f in panel.items()}
    eth_test_start = _times(panel["ETHUSDT"])[folds["ETHUSDT"][0].test.start]
    btc_learned_until = _times(panel["BTCUSDT"])[folds["BTCUSDT"][0].val.stop - 1]
    assert btc_learned_until > eth_test_start


def _leaky_plan(symbols: dict[str, PanelSymbol]) -> PanelPlan:
    """Per-series cuts: every symbol's own row folds, the learners' rows taken fold by fold."""
    folds = {s: walk_forward_folds(p.features.height, DATA, CONFIG) for s, p in symbols.items()}
    learners = {
        k: {s: {"train": folds[s][k].train, "val": folds[s][k].val} for s in symbols} for k in range(CONFIG.n_folds)
    }
    return PanelPlan((), folds, learners, {})


def _global_forecasts(planner) -> callable:
    """The global LightGBM's test forecasts per symbol, fold and head, stamped at their issue time."""

    def compute(frames: dict[str, pl.DataFrame]) -> dict[str, Stamped]:
        symbols = {s: PanelSymbol(f) for s, f in frames.items()}
        plan = planner(symbols)
        fits = GlobalFits(symbols, plan, DATA, budget("tiny"), on_progress=lambda _: None)
        out: dict[str, Stamped] = {}
        for symbol, folds in plan.scored.items():
            for fold in folds:
                data = build_fold_data(frames[symbol], fold, DATA)
                issued = data.test.issue_times(DATA)
                for head, values in fits.member(LIGHTGBM, fold.index).forecast(data.test).items():
                    out[f"{symbol}.fold{fold.index}.{head}"] = (issued, values)
        return out

    return compute


def _calendar_plan(symbols: dict[str, PanelSymbol]) -> PanelPlan:
    return plan_panel(symbols, DATA, CONFIG)


def _forty_hours_into(panel: dict[str, pl.DataFrame], plan: PanelPlan, symbol: str) -> datetime:
    """A time 40 hours into the symbol's fold-0 test block of `plan`."""
    return panel[symbol]["open_time"][plan.scored[symbol][0].test.start + 40]


def test_a_global_member_on_calendar_folds_reads_no_symbols_future(panel):
    compute = _global_forecasts(_calendar_plan)
    t = _forty_hours_into(panel, _calendar_plan({s: PanelSymbol(f) for s, f in panel.items()}), "ETHUSDT")
    t_ms = int(t.timestamp() * 1000)
    assert any((issued <= t_ms).any() for issued, _ in compute(panel).values())  # the check is not vacuous
    assert_no_panel_lookahead(compute, panel, t)


def test_a_global_member_on_per_series_cuts_is_caught_reading_another_symbols_future(panel):
    """The positive control: BTC's own fold-0 training rows run past ETH's own fold-0 test start, so the
    pooled model's ETH forecasts change when BTC's later rows do."""
    t = _forty_hours_into(panel, _leaky_plan({s: PanelSymbol(f) for s, f in panel.items()}), "ETHUSDT")
    with pytest.raises(LeakageError, match=r"ETHUSDT\.fold0"):
        assert_no_panel_lookahead(_global_forecasts(_leaky_plan), panel, t)


def test_the_pooled_segment_never_learns_a_window_across_two_symbols(panel):
    segments = {}
    for symbol, frame in panel.items():
        scaler = fit_feature_scaler(frame, DATA)
        segments[symbol] = build_segments(frame, scaler, DATA, {"train": slice(0, 400), "val": slice(400, 500)})
    train = pool_segments({s: parts["train"] for s, parts in segments.items()}, DATA, "equal")
    per_symbol = 400 - DATA.seq_len - DATA.horizon + 1
    valid = train.valid_windows(DATA)
    assert valid.size == 2 * per_symbol
    assert set(valid) == set(range(per_symbol)) | set(range(400, 400 + per_symbol))  # none starts in BTC's tail
    for starts, weights in epoch_batches(valid[epoch_order(budget("tiny"), valid.size, 0)], 64, train.weights):
        assert set(starts[weights > 0]) <= set(valid)
    first = segments["BTCUSDT"]["train"]
    assert np.array_equal(train.y[:per_symbol], first.y)  # each window keeps its own target
    assert np.array_equal(train.y[400 : 400 + per_symbol], segments["ETHUSDT"]["train"].y)


@pytest.mark.parametrize("weighting", ["rows", "equal", "sqrt"])
def test_symbol_weights_average_one_and_shift_weight_to_short_series(weighting):
    counts = np.array([30_000.0, 3_000.0])
    w = symbol_weights(counts, weighting)
    assert np.isclose((w * counts).sum() / counts.sum(), 1.0)
    totals = w * counts
    expected_share = {"rows": 10 / 11, "equal": 0.5, "sqrt": np.sqrt(10) / (np.sqrt(10) + 1)}[weighting]
    assert np.isclose(totals[0] / totals.sum(), expected_share)


def test_a_panel_of_two_intervals_is_refused(panel):
    klines, _ = clean_klines(SampleSource().fetch("ETHUSDT", "1h", None, None), "1h")
    four_hourly = compute_features(klines.tail(8000).gather_every(4), DATA.feature_set)
    with pytest.raises(ConfigError, match="one panel, one interval"):
        plan_panel({"BTCUSDT": PanelSymbol(panel["BTCUSDT"]), "ETH4H": PanelSymbol(four_hourly)}, DATA, CONFIG)


def test_a_stablecoin_and_a_short_series_are_excluded_with_the_reason(panel):
    stable = panel["BTCUSDT"].with_columns(
        pl.Series("close", 1.0 + 0.0005 * np.sin(np.arange(panel["BTCUSDT"].height)))
    )
    short = panel["BTCUSDT"].tail(100)
    symbols = {"BTCUSDT": PanelSymbol(panel["BTCUSDT"]), "USDCUSDT": PanelSymbol(stable), "NEW": PanelSymbol(short)}
    plan = plan_panel(symbols, DATA, CONFIG)
    assert plan.excluded["USDCUSDT"].startswith("stablecoin-like")
    assert plan.excluded["NEW"].startswith("insufficient history: 100 candles, ")
    assert all(set(learners) == {"BTCUSDT"} for learners in plan.learners.values())


def test_an_unseen_symbol_is_scored_but_never_learned_from(panel):
    symbols = {"BTCUSDT": PanelSymbol(panel["BTCUSDT"]), "ETHUSDT": PanelSymbol(panel["ETHUSDT"], unseen=True)}
    plan = plan_panel(symbols, DATA, CONFIG)
    assert "ETHUSDT" in plan.scored
    assert all("ETHUSDT" not in learners for learners in plan.learners.values())
