"""Every registered architecture × head: builds, trains one step, exports to ONNX, and agrees with JAX.

Small `demo()` presets on real bundled klines keep the whole matrix to a few minutes on 2 cores.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from cse_models.config import DataConfig
from cse_models.export.onnx import check_parity, export_onnx
from cse_models.features.dataset import build_datasets, fit_feature_scaler
from cse_models.features.heldout import graph_inputs
from cse_models.models import MODELS, build_model
from cse_models.training.loop import train_step
from cse_models.training.run import model_config_for

TASKS = ("regression", "classification")


@pytest.fixture(scope="module", params=TASKS)
def task_data(request, btc_features):
    data_cfg = DataConfig(seq_len=16, task=request.param)
    scaler = fit_feature_scaler(btc_features, data_cfg)
    return data_cfg, scaler, build_datasets(btc_features, scaler, data_cfg)


def _params(model: nnx.Module) -> list[np.ndarray]:
    return [np.array(leaf) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))]


@pytest.mark.parametrize("name", MODELS.names())
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
    path = export_onnx(model, scaler, data_cfg, tmp_path / f"{name}.onnx")
    inputs = graph_inputs(datasets["test"], data_cfg)
    check_parity(model, scaler, data_cfg, path, inputs, batches=(1, 7))  # raises ExportParityError
