"""The forecast heads: level-free inputs, λ = 0 is persistence, vol-scaled conformal coverage, bad input."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import polars as pl
import pytest
from flax import nnx

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler, kline_columns
from cse_models.errors import DataError
from cse_models.evaluation import WalkForwardConfig, evaluate_walk_forward, walk_forward_folds
from cse_models.features.sets import FEATURE_SETS, get_feature_set
from cse_models.heads import HEADS, HeadCalibration
from cse_models.heads.graph import serving_function
from cse_models.models import build_model
from cse_models.scoring.baselines import REFERENCE
from cse_models.specs import ModelSpec
from cse_models.training.calibrate import predict_heads
from cse_models.training.config import budget
from cse_models.training.run import fit_spec, model_config_for

PRICES = ("open", "high", "low", "close")


@pytest.fixture(scope="module")
def eth_klines() -> pl.DataFrame:
    klines, _ = clean_klines(SampleSource().fetch("ETHUSDT", "1h", None, None), "1h")
    return klines.tail(1500)


def _scaled_prices(klines: pl.DataFrame, factor: float) -> pl.DataFrame:
    return klines.with_columns(*(pl.col(c) * factor for c in PRICES))


@pytest.mark.parametrize("name", [n for n in FEATURE_SETS if get_feature_set(n).level_free])
def test_level_free_feature_set_ignores_the_price_level(name, eth_klines):
    base = get_feature_set(name)(kline_columns(eth_klines))
    scaled = get_feature_set(name)(kline_columns(_scaled_prices(eth_klines, 1000.0)))
    warm = get_feature_set(name).warmup
    np.testing.assert_allclose(scaled[warm:], base[warm:], rtol=1e-9, atol=1e-12)


def test_the_level_check_would_catch_a_level_feature(eth_klines):
    """Positive control: the seeds' mur9 carries prices, so the same comparison fails for it."""
    assert "stationary" in FEATURE_SETS and get_feature_set("stationary").level_free
    assert not get_feature_set("mur9").level_free
    base = get_feature_set("mur9")(kline_columns(eth_klines))
    scaled = get_feature_set("mur9")(kline_columns(_scaled_prices(eth_klines, 1000.0)))
    assert not np.allclose(scaled, base)


@pytest.fixture(scope="module")
def forecast_setup(eth_klines):
    data_cfg = DataConfig(seq_len=12)
    features = compute_features(eth_klines, data_cfg.feature_set)
    scaler = fit_feature_scaler(features, data_cfg)
    datasets = build_datasets(features, scaler, data_cfg)
    cfg = model_config_for("lstm_regressor", data_cfg, len(scaler.feature_names), "demo")
    model = build_model("lstm_regressor", cfg, rngs=nnx.Rngs(0))
    model.eval()
    return data_cfg, scaler, datasets, model


def _card(forecast_setup, calibration: HeadCalibration, factor: float = 1.0) -> dict[str, np.ndarray]:
    data_cfg, scaler, datasets, model = forecast_setup
    inputs = graph_inputs(datasets["test"], data_cfg, limit=32)
    fn = serving_function(model, scaler, data_cfg, calibration)
    outputs = fn(jnp.asarray(inputs["features"]), jnp.asarray(inputs["last_close"] * factor))
    names = ("close", "return", "lower", "upper", "volatility", "probabilities")
    return {"last_close": inputs["last_close"] * factor} | dict(zip(names, map(np.asarray, outputs), strict=True))


def test_shrinkage_zero_is_exactly_persistence(forecast_setup):
    card = _card(forecast_setup, HeadCalibration(shrink=0.0))
    np.testing.assert_array_equal(card["close"], card["last_close"])
    np.testing.assert_array_equal(card["return"], np.zeros_like(card["return"]))
    moved = _card(forecast_setup, HeadCalibration(shrink=1.0))
    assert not np.array_equal(moved["close"], moved["last_close"])  # the control: λ = 1 does move


def test_price_outputs_scale_with_the_price_level_and_nothing_else_does(forecast_setup):
    calibration = HeadCalibration(shrink=0.7, interval_scale=1.3)
    base, scaled = _card(forecast_setup, calibration), _card(forecast_setup, calibration, factor=1000.0)
    for name in ("close", "lower", "upper"):
        np.testing.assert_allclose(scaled[name], base[name] * 1000.0, rtol=1e-6)
    for name in ("return", "volatility", "probabilities"):
        np.testing.assert_array_equal(scaled[name], base[name])
    assert (base["lower"] < base["close"]).all() and (base["close"] < base["upper"]).all()
    np.testing.assert_allclose(base["probabilities"].sum(axis=1), 1.0, rtol=1e-6)


def garch_klines(n: int, seed: int = 3) -> pl.DataFrame:
    """Hourly candles from a GARCH(1,1) with Student-t(5) shocks: volatility clusters as in crypto. The
    candle's wicks scale with its conditional volatility (a Parkinson-style range)."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 2e-7, 0.08, 0.9
    variance, returns, vol = omega / (1 - alpha - beta), np.empty(n), np.empty(n)
    for t in range(n):
        vol[t] = np.sqrt(variance)
        returns[t] = vol[t] * rng.standard_t(5) / np.sqrt(5 / 3)
        variance = omega + alpha * returns[t] ** 2 + beta * variance
    close = 30_000.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wicks = vol * np.abs(rng.normal(0, 1, (2, n)))
    start = np.datetime64("2022-01-01T00:00", "ms").astype(np.int64)
    return pl.DataFrame(
        {
            "open_time": pl.Series(start + np.arange(n) * 3_600_000).cast(pl.Datetime("ms", "UTC")),
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(wicks[0]),
            "low": np.minimum(open_, close) * np.exp(-wicks[1]),
            "close": close,
            "volume": rng.uniform(10, 100, n),
        }
    )


def test_conformal_interval_covers_its_level_on_a_garch_series():
    """The published recipe — fit, calibrate on the validation slice, forecast through the exported
    function — on a series it has never seen: coverage of the held-back windows within 2 pp of 80 %."""
    data_cfg = DataConfig(seq_len=24, calibration_windows=2000)
    features = compute_features(garch_klines(16_000), data_cfg.feature_set)
    scaler = fit_feature_scaler(features, data_cfg)
    datasets = build_datasets(features, scaler, data_cfg)
    fitted = fit_spec(
        ModelSpec("lstm", "lstm_regressor", "demo"), PreparedSeries(datasets, data_cfg, scaler), budget("tiny")
    )
    bounds = predict_heads(fitted.model, datasets["test"], data_cfg, scaler, fitted.calibration)["interval"]
    actual = datasets["test"].targets(data_cfg, scaler.feature_names).close
    coverage = np.mean((bounds[:, 0] <= actual) & (actual <= bounds[:, 1]))
    assert fitted.calibration.calibration_points == 2000
    assert abs(coverage - 0.8) < 0.02, coverage


def test_too_few_klines_for_the_warm_up_name_what_is_needed(eth_klines):
    with pytest.raises(DataError, match=r"insufficient history: 100 candles, 169 needed .* needs more than 168 klines"):
        compute_features(eth_klines.head(100), "stationary")


def test_constant_prices_are_refused_naming_the_cause(eth_klines):
    flat = eth_klines.with_columns(*(pl.lit(100.0).alias(c) for c in PRICES))
    data_cfg = DataConfig(seq_len=12)
    features = compute_features(flat, data_cfg.feature_set)
    with pytest.raises(DataError, match="constant prices"):
        build_datasets(features, fit_feature_scaler(features, data_cfg), data_cfg)


def test_a_horizon_longer_than_a_fold_says_how_many_rows_are_needed():
    data_cfg = DataConfig(seq_len=24, horizon=400)
    with pytest.raises(DataError, match=r"horizon 400 .* need ≥ \d+ rows"):
        walk_forward_folds(2_000, data_cfg, WalkForwardConfig(n_folds=3))


@pytest.mark.parametrize("horizon", [4, pytest.param(24, marks=pytest.mark.slow)])
def test_every_head_is_evaluated_at_longer_horizons(horizon, eth_klines):
    """h-step targets (σ·√h scaling, h-candle ranges): every head gets a board, the references tie
    themselves, and the trained model's interval still covers about its level."""
    data_cfg = DataConfig(seq_len=12, horizon=horizon, calibration_windows=200)
    features = compute_features(eth_klines, data_cfg.feature_set)
    boards = evaluate_walk_forward(
        features,
        data_cfg,
        WalkForwardConfig(n_folds=2),
        models=[ModelSpec("lstm", "lstm_regressor", "demo")],
        budget="tiny",
    )
    assert boards.heads == HEADS
    for head in HEADS:
        board = boards[head]
        assert board.horizon == horizon and board.row(REFERENCE[head]).skill == 0.0
        assert np.isfinite(board.row("lstm").skill)
    assert 0.6 < boards["interval"].row("lstm").metrics["coverage"] < 0.95
