"""Walk-forward folds, baselines, scores and the Diebold–Mariano test: small hand cases and the real sample."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.segments import SplitArrays, compute_features
from cse_models.errors import DataError
from cse_models.evaluation import (
    BASELINES,
    FoldData,
    WalkForwardConfig,
    baseline_names,
    build_leaderboard,
    diebold_mariano,
    rows_needed,
    run_walk_forward,
    skill,
    student_t_cdf,
    walk_forward_folds,
)
from cse_models.features.windows import classification_targets
from cse_models.scoring.folds import Fold

CFG = DataConfig.seed(seq_len=12)


@pytest.fixture(scope="module")
def features() -> pl.DataFrame:
    klines, _ = clean_klines(SampleSource().fetch("BTCUSDT", "1h", None, None), "1h")
    return compute_features(klines.tail(1500), "mur9")


def _baselines(task: str) -> dict:
    return {name: BASELINES.get(name).forecaster() for name in baseline_names(task)}


def test_persistence_has_skill_exactly_zero_against_itself(features):
    result = run_walk_forward(features, CFG, WalkForwardConfig(), _baselines("regression"))
    board = build_leaderboard(result, "price")
    row = board.row("persistence")
    assert board.head == "price" and board.reference == "persistence"
    assert row.skill == 0.0 and row.fold_skill == (0.0, 0.0, 0.0)
    assert row.dm.statistic == 0.0 and row.dm.p_value == 1.0
    assert {r.name for r in board.rows} == {"persistence", "drift", "moving_average", "ridge_returns"}
    assert board.n_points == result.truth["price"].size == sum(f["points"] for f in board.folds)


def test_every_forecaster_is_scored_on_the_same_out_of_sample_points(features):
    result = run_walk_forward(features, CFG, WalkForwardConfig(n_folds=2), _baselines("regression"))
    assert np.all(np.diff(result.target_time_ms) > 0)  # one point per candle, in time order, no overlap
    assert result.heads == ("price",)  # the legacy regression task has one head
    assert all(f.shape == result.truth["price"].shape for f in result.forecasts["price"].values())
    np.testing.assert_array_equal(result.forecasts["price"]["persistence"], result.last_close)
    assert np.all(result.target_time_ms - result.issue_time_ms == 3_600_000)


@pytest.mark.parametrize("scheme", ["expanding", "sliding"])
def test_folds_are_chronological_with_a_purge_of_at_least_seq_len(scheme):
    config = WalkForwardConfig(n_folds=4, scheme=scheme)
    folds = walk_forward_folds(3000, CFG, config)
    assert [f.index for f in folds] == [0, 1, 2, 3]
    assert folds[-1].test.stop == 3000
    for fold in folds:
        assert fold.train.stop + CFG.seq_len <= fold.val.start
        assert fold.val.stop + CFG.seq_len <= fold.test.start
    for earlier, later in itertools.pairwise(folds):
        assert earlier.test.stop == later.test.start
    lengths = {f.train.stop - f.train.start for f in folds}
    assert (len(lengths) == 1) == (scheme == "sliding")


def test_too_few_rows_says_how_many_are_needed():
    config = WalkForwardConfig(n_folds=3)
    need = rows_needed(CFG, config)
    walk_forward_folds(need, CFG, config)
    with pytest.raises(DataError, match=rf"{need - 1} rows are too few for 3 walk-forward folds.*need ≥ {need} rows"):
        walk_forward_folds(need - 1, CFG, config)
    assert all(walk_forward_folds(n, CFG, config) for n in range(need, need + 50))


def test_a_gap_longer_than_a_fold_is_refused(features):
    holed = pl.concat([features.head(600), features.tail(500)])  # 400 candles missing, test blocks of 275
    with pytest.raises(DataError, match=r"gap of 400 missing candles .* longer than a fold's test block"):
        run_walk_forward(holed, CFG, WalkForwardConfig(), _baselines("regression"))


def test_constant_prices_are_refused_because_skill_is_undefined(features):
    flat = features.with_columns(pl.lit(100.0).alias(c) for c in ("open", "high", "low", "close"))
    with pytest.raises(DataError, match=r"constant prices.*skill is undefined"):
        run_walk_forward(flat, CFG, WalkForwardConfig(), _baselines("regression"))
    with pytest.raises(DataError, match="skill is undefined"):
        skill(1.0, 0.0)


def _fold_data(close: np.ndarray, cfg: DataConfig, train_labels: np.ndarray) -> FoldData:
    n = close.size
    column = close[:, None]
    test = SplitArrays(
        x=column,
        raw=column.astype(np.float32),
        close=close,
        high=close,
        low=close,
        open_time_ms=np.arange(n) * 3_600_000,
        y=np.zeros(n),
    )
    zero = np.zeros(1)
    train = SplitArrays(
        x=zero[:, None], raw=zero[:, None], close=zero, high=zero, low=zero, open_time_ms=zero, y=train_labels
    )
    return FoldData(Fold(0, slice(0, 1), slice(1, 2), slice(2, 2 + n)), None, {"train": train, "test": test}, cfg)


def test_baselines_forecast_from_the_window_only():
    cfg = DataConfig.seed(seq_len=3, horizon=1, hold_band=0.01)
    close = np.array([100.0, 102.0, 101.0, 104.0, 104.5])  # windows [100 102 101], [102 101 104]
    data = _fold_data(close, cfg, train_labels=np.array([0, 2, 2, 1]))
    names = ("persistence", "drift", "moving_average", "majority", "class_frequencies", "last_move")
    forecast = {name: BASELINES.get(name).forecast(data) for name in names}
    np.testing.assert_allclose(forecast["persistence"], [101.0, 104.0])
    np.testing.assert_allclose(forecast["drift"], [101.0 + (101 - 100) / 2, 104.0 + (104 - 102) / 2])
    np.testing.assert_allclose(forecast["moving_average"], [101.0, 307.0 / 3])
    np.testing.assert_allclose(forecast["majority"], [[0, 0, 1], [0, 0, 1]])  # buy is the train majority
    np.testing.assert_allclose(forecast["class_frequencies"], [[0.25, 0.25, 0.5]] * 2)
    # last moves: 101/102 − 1 ≈ −0.98 % (inside the 1 % band: hold), 104/101 − 1 ≈ +2.97 % (buy)
    np.testing.assert_allclose(forecast["last_move"], [[0, 1, 0], [0, 0, 1]])
    # … the same rule the labels use, one step earlier
    assert classification_targets(close[:4], 2, 1, 0.01).tolist() == [1, 2]


def test_student_t_cdf_matches_closed_forms_and_tables():
    assert student_t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-12)  # Cauchy
    for t in (-3.0, -0.4, 0.0, 0.7, 2.5):  # df = 2: ½ + t / (2·sqrt(2 + t²))
        assert student_t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
    assert student_t_cdf(2.228, 10) == pytest.approx(0.975, abs=1e-4)  # t table: t_{0.975,10} = 2.228
    assert student_t_cdf(1.660, 100) == pytest.approx(0.95, abs=1e-4)  # t_{0.95,100} = 1.660
    assert student_t_cdf(1.959964, 1e7) == pytest.approx(0.975, abs=1e-6)  # → normal


def test_diebold_mariano_matches_a_hand_computation_with_hac_lag():
    e_model = np.array([0.5, -1.0, 0.9, 1.5, 1.2, -0.3, -0.6, 0.1])
    e_base = np.array([1.0, -1.2, 1.4, 1.6, 1.1, -1.0, -1.1, 0.9])
    h, n = 2, 8
    d = e_model**2 - e_base**2
    dbar = sum(d) / n
    g0 = sum((x - dbar) ** 2 for x in d) / n
    g1 = sum((d[t] - dbar) * (d[t - 1] - dbar) for t in range(1, n)) / n
    dm = dbar / math.sqrt((g0 + 2 * g1) / n)
    hln = dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    result = diebold_mariano(e_model, e_base, horizon=h, loss="squared")
    assert result.statistic == pytest.approx(hln, rel=1e-12)
    assert result.mean_loss_difference == pytest.approx(dbar) and dbar < 0  # the model's errors are smaller
    assert result.p_value_model_better == pytest.approx(student_t_cdf(hln, n - 1))
    assert result.p_value == pytest.approx(2 * student_t_cdf(-abs(hln), n - 1))


def test_diebold_mariano_falls_back_to_gamma0_when_the_hac_sum_is_not_positive():
    e_model = np.array([0.5, -1.0, 0.2, 1.5, -0.3, 0.8, -0.6, 0.1])
    e_base = np.array([1.0, -1.2, 0.9, 1.1, -1.4, 1.0, -0.2, 0.9])
    d = e_model**2 - e_base**2
    c = d - d.mean()
    g0, g1 = c @ c / 8, c[1:] @ c[:-1] / 8
    assert g0 + 2 * g1 < 0  # the truncated long-run variance is negative here
    hln = d.mean() / math.sqrt(g0 / 8) * math.sqrt((8 + 1 - 4 + 2 / 8) / 8)
    assert diebold_mariano(e_model, e_base, horizon=2).statistic == pytest.approx(hln, rel=1e-12)


def test_diebold_mariano_p_value_by_hand_with_two_degrees_of_freedom():
    # n = 3, h = 1: absolute loss differences −1, −2, 0 → d̄ = −1, γ0 = 2/3, DM = −1 / sqrt(2/9) = −2.1213…
    result = diebold_mariano(np.array([1.0, 1.0, 2.0]), np.array([2.0, -3.0, 2.0]), horizon=1, loss="absolute")
    dm = -1 / math.sqrt((2 / 3) / 3) * math.sqrt((3 + 1 - 2) / 3)
    assert result.statistic == pytest.approx(dm, rel=1e-12)
    one_sided = 0.5 + dm / (2 * math.sqrt(2 + dm * dm))  # Student t with 2 degrees of freedom, closed form
    assert result.p_value_model_better == pytest.approx(one_sided, rel=1e-10)
    assert result.p_value == pytest.approx(2 * one_sided, rel=1e-10)


def test_diebold_mariano_of_identical_forecasts_rejects_nothing():
    errors = np.random.default_rng(0).normal(size=50)
    result = diebold_mariano(errors, errors.copy(), horizon=3)
    assert (result.statistic, result.p_value, result.p_value_model_better) == (0.0, 1.0, 0.5)
