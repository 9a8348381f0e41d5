"""Member kinds: dispatch by registry, the Flax kind wrapping the training code, the walk-forward hook."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from cse_models.datasets.prepared import PreparedSeries
from cse_models.errors import UnknownNameError
from cse_models.evaluation import WalkForwardConfig, run_walk_forward
from cse_models.evaluation.trained import trained_forecaster
from cse_models.members import member_kind
from cse_models.specs import ModelSpec
from cse_models.training.config import budget

LSTM = ModelSpec("lstm", "lstm_regressor", "demo")


def test_member_kind_dispatches_without_importing_jax():
    kind = member_kind("lstm_regressor")
    assert kind.name == "flax" and kind.libraries("lstm_regressor") == {"jax", "flax"}
    if "jax" not in sys.modules:  # another test may have imported it already
        member_kind("anything")
        assert "jax" not in sys.modules


def test_an_unknown_architecture_fails_listing_every_kind():
    with pytest.raises(UnknownNameError, match=r"unknown model 'nonsense'; known: .*lstm_regressor"):
        member_kind("nonsense").validate(ModelSpec("x", "nonsense"))


def test_the_flax_kind_forecasts_through_the_serving_function(forecast_data):
    from cse_models.training.calibrate import predict_heads

    data_cfg, scaler, datasets, _ = forecast_data
    fitted = member_kind(LSTM.architecture).fit(LSTM, PreparedSeries(datasets, data_cfg, scaler), budget("tiny"))
    heads = fitted.forecast(datasets["val"])
    expected = predict_heads(fitted.fitted.model, datasets["val"], data_cfg, scaler, fitted.calibration)
    assert set(heads) == {"price", "interval", "volatility", "direction"}
    for head, values in expected.items():
        np.testing.assert_array_equal(heads[head], values)
    assert fitted.calibration is not None and fitted.calibration.calibration_points > 0


def test_on_fitted_sees_every_fold_member_once(forecast_data):
    data_cfg, _, _, features = forecast_data
    seen = []
    forecaster = trained_forecaster(LSTM, budget("tiny"), on_fitted=lambda data, member: seen.append((data, member)))
    result = run_walk_forward(features, data_cfg, WalkForwardConfig(n_folds=2), {"lstm": forecaster})
    assert [data.fold.index for data, _ in seen] == [0, 1]
    for data, member in seen:
        val = member.forecast(data.segments["val"])
        assert val["direction"].shape[1] == 3 and np.isfinite(val["price"]).all()
    assert result.forecasts["price"]["lstm"].shape == result.truth["price"].shape
