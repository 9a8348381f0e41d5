"""Every registered architecture × task: builds, trains one step, exports to ONNX, and agrees with JAX.

The multi-head forecast task (what cse publishes) runs for every architecture in `make test`; the seeds'
regression and classification tasks repeat the same matrix behind the `slow` marker (CSE_SLOW=1).
Small `demo()` presets on real bundled klines keep it to a few minutes on 2 cores.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from zoo_params import architectures

from cse_models.config import DataConfig
from cse_models.data.clean import clean_klines
from cse_models.data.file_sources import SampleSource
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler
from cse_models.export.onnx import check_parity, export_onnx
from cse_models.heads import HeadCalibration
from cse_models.models import MODELS, build_model
from cse_models.training.run import model_config_for
from cse_models.training.step import train_step

TASKS = (
    "forecast",
    pytest.param("regression", marks=pytest.mark.slow),
    pytest.param("classification", marks=pytest.mark.slow),
)
CALIBRATION = HeadCalibration(shrink=0.5, interval_scale=1.3)


@pytest.fixture(scope="module")
def stationary_features():
    klines, _ = clean_klines(SampleSource().fetch("BTCUSDT", "1h", None, None), "1h")
    return compute_features(klines.tail(1400), "stationary")


@pytest.fixture(scope="module", params=TASKS)
def task_data(request, btc_features, stationary_features):
    if request.param == "forecast":
        data_cfg, features = DataConfig(seq_len=16), stationary_features
    else:
        data_cfg, features = DataConfig.seed(seq_len=16, task=request.param), btc_features
    scaler = fit_feature_scaler(features, data_cfg)
    return data_cfg, scaler, build_datasets(features, scaler, data_cfg)


def _params(model: nnx.Module) -> list[np.ndarray]:
    return [np.array(leaf) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))]


@pytest.mark.parametrize("name", architectures(MODELS.names()))
def test_architecture_trains_exports_and_matches_onnx(name, task_data, tmp_path):
    data_cfg, scaler, datasets = task_data
    train = datasets["train"]
    cfg = model_config_for(name, data_cfg, train.x.shape[1], preset="demo")
    model = build_model(name, cfg, rngs=nnx.Rngs(0))
    before = _params(model)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    loss = train_step(
        model, optimizer, jnp.asarray(train.x), jnp.asarray(train.y), jnp.arange(32), data_cfg.seq_len, data_cfg.task
    )
    assert np.isfinite(float(loss))
    assert any(not np.array_equal(a, b) for a, b in zip(before, _params(model), strict=True))
    calibration = CALIBRATION if data_cfg.task == "forecast" else None
    path = export_onnx(model, scaler, data_cfg, tmp_path / f"{name}.onnx", calibration)
    inputs = graph_inputs(datasets["test"], data_cfg)
    check_parity(model, scaler, data_cfg, path, inputs, calibration, batches=(1, 7))  # raises ExportParityError
