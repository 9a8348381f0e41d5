"""RevIN-style per-window normalisation, available to every architecture through the shared input stage."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler
from cse_models.export.onnx import check_parity, export_onnx
from cse_models.heads import HeadCalibration
from cse_models.models import build_model
from cse_models.training.run import model_config_for

DATA = DataConfig(seq_len=16)


def _model(name: str, window_norm: bool, n_features: int = 20) -> nnx.Module:
    cfg = model_config_for(name, DATA, n_features, "demo", window_norm=window_norm)
    model = build_model(name, cfg, rngs=nnx.Rngs(0))
    model.eval()
    return model


@pytest.mark.parametrize("name", ["lstm_regressor", "financial_gru", "residual_cnn1d", "transformer_encoder"])
def test_normalised_windows_ignore_each_features_level_and_scale(name):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 16, 20)), jnp.float32)
    shift = jnp.asarray(np.linspace(-5, 5, 20), jnp.float32)
    moved = x * 3.0 + shift
    np.testing.assert_allclose(_model(name, True)(moved), _model(name, True)(x), rtol=1e-4, atol=1e-5)
    assert not np.allclose(_model(name, False)(moved), _model(name, False)(x), atol=1e-3)  # the control


def test_a_normalised_model_exports_with_parity(tmp_path):
    klines, _ = clean_klines(SampleSource().fetch("BTCUSDT", "1h", None, None), "1h")
    features = compute_features(klines.tail(1500), DATA.feature_set)
    scaler = fit_feature_scaler(features, DATA)
    datasets = build_datasets(features, scaler, DATA)
    model = _model("lstm_regressor", True, len(scaler.feature_names))
    calibration = HeadCalibration(shrink=0.5)
    path = export_onnx(model, scaler, DATA, tmp_path / "model.onnx", calibration)
    check_parity(model, scaler, DATA, path, graph_inputs(datasets["test"], DATA), calibration)
