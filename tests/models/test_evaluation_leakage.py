"""Look-ahead guards on the walk-forward: folds, per-fold scalers, segments and forecasts known at or before t
must not move when every candle after t changes — and deliberately leaky variants must be caught."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.segments import compute_features, feature_matrix
from cse_models.evaluation import (
    BASELINES,
    FoldData,
    LeakageError,
    WalkForwardConfig,
    assert_no_lookahead,
    baseline_names,
    build_fold_data,
    scale_after,
    shuffle_after,
    walk_forward_folds,
    walk_forward_stamps,
)
from cse_models.features.scaling import fit_scaler
from cse_models.features.sets import get_feature_set
from cse_models.features.windows import target_rows
from cse_models.heads.layout import HEADS
from cse_models.scoring.folds import Fold
from cse_models.specs import ModelSpec

CONFIG = WalkForwardConfig(n_folds=3)


@pytest.fixture(scope="module")
def klines() -> pl.DataFrame:
    clean, _ = clean_klines(SampleSource().fetch("ETHUSDT", "1h", None, None), "1h")
    return clean.tail(1600)


def _time(klines: pl.DataFrame, data_cfg: DataConfig, fold: int, segment: str, offset: int, config=CONFIG) -> datetime:
    """The open time `offset` rows into a fold's segment (feature row i is kline row i + the set's warm-up)."""
    warmup = get_feature_set(data_cfg.feature_set).warmup
    part = walk_forward_folds(klines.height - warmup, data_cfg, config)[fold].segments()[segment]
    assert part.start + offset < part.stop
    return klines["open_time"][warmup + part.start + offset]


def _from_klines(data_cfg: DataConfig, forecasters=None, config=CONFIG, **kwargs):
    stamps = walk_forward_stamps(data_cfg, config, forecasters, **kwargs)
    return lambda frame: stamps(compute_features(frame, data_cfg.feature_set))


def _baselines(task: str) -> dict:
    return {name: BASELINES.get(name).forecaster() for name in baseline_names(task)}


DATA_CONFIGS = {
    "regression": DataConfig.seed(seq_len=12),
    "classification": DataConfig.seed(seq_len=12, task="classification"),
    "forecast": DataConfig(seq_len=12),  # every head, stationary features, robust scaler
}


@pytest.mark.parametrize("task", sorted(DATA_CONFIGS))
@pytest.mark.parametrize("change", [scale_after, shuffle_after], ids=["scaled", "shuffled"])
@pytest.mark.parametrize(("fold", "segment", "offset"), [(0, "test", 40), (1, "train", 5), (2, "val", 0)])
def test_folds_scalers_and_baseline_forecasts_known_by_t_ignore_later_candles(
    klines, task, change, fold, segment, offset
):
    data_cfg = DATA_CONFIGS[task]
    t = _time(klines, data_cfg, fold, segment, offset)
    forecasters = _baselines(task)
    heads = {BASELINES.get(name).head for name in forecasters}
    assert heads == {"regression": {"price"}, "classification": {"direction"}}.get(task, set(HEADS))
    assert_no_lookahead(_from_klines(data_cfg, forecasters), klines, t, change)


def _next_close(data: FoldData) -> dict[str, np.ndarray]:
    """A 'model' that reads the close it is asked to forecast."""
    test, cfg = data.test, data.data_cfg
    return {"price": test.close[target_rows(test.close.size, cfg.seq_len, cfg.horizon)]}


def test_a_forecaster_reading_the_next_close_is_caught(klines):
    data_cfg = DataConfig.seed(seq_len=12)
    t = _time(klines, data_cfg, 1, "test", 100)
    with pytest.raises(LeakageError, match=r"fold1\.next_close\.price: row \d+ known at or before"):
        assert_no_lookahead(_from_klines(data_cfg, {"next_close": _next_close}), klines, t, scale_after)


def _scaler_fit_on_the_whole_fold(features: pl.DataFrame, fold: Fold, data_cfg: DataConfig) -> FoldData:
    honest = build_fold_data(features, fold, data_cfg)
    names = honest.scaler.feature_names
    leaky = fit_scaler(data_cfg.scaler, feature_matrix(features, names, slice(fold.train.start, fold.test.stop)), names)
    return FoldData(fold, leaky, honest.segments, data_cfg)


def test_a_per_fold_scaler_fit_beyond_the_train_rows_is_caught(klines):
    data_cfg = DataConfig.seed(seq_len=12)
    t = _time(klines, data_cfg, 0, "test", 10)
    compute = _from_klines(data_cfg, fold_builder=_scaler_fit_on_the_whole_fold)
    with pytest.raises(LeakageError, match=r"fold0\.scaler"):
        assert_no_lookahead(compute, klines, t, scale_after)


def test_a_retrained_model_forecasts_the_same_until_t(klines):
    from cse_models.evaluation.trained import trained_forecaster
    from cse_models.training.config import budget

    data_cfg, one_fold = DataConfig(seq_len=12), WalkForwardConfig(n_folds=1)
    t = _time(klines, data_cfg, 0, "test", 30, one_fold)  # the model learns and calibrates on rows before t only
    model = trained_forecaster(ModelSpec("lstm", "lstm_regressor", "demo"), budget("tiny"))
    stamps = _from_klines(data_cfg, {"lstm": model}, one_fold)
    seen: list[set[str]] = []

    def compute(frame: pl.DataFrame):
        out = stamps(frame)
        seen.append(set(out))
        return out

    assert_no_lookahead(compute, klines, t, shuffle_after)
    assert {f"fold0.lstm.{head}" for head in HEADS} <= seen[0]  # every head's forecasts were compared


def test_the_check_refuses_a_change_that_changes_nothing(klines):
    from cse_models.errors import ConfigError

    data_cfg = DataConfig.seed(seq_len=12)
    with pytest.raises(ConfigError, match="would prove nothing"):
        assert_no_lookahead(_from_klines(data_cfg), klines, klines["open_time"][500], lambda frame, _: frame)
