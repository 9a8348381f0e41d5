"""ONNX export: native LSTM operator, folded scaling, parity with JAX on held-back windows."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from flax import nnx

from cse_models.errors import ExportParityError
from cse_models.export.onnx import check_parity, export_onnx, op_types
from cse_models.features.windows import sliding_windows
from cse_models.heads.layout import INPUT_NAME
from cse_models.models import build_model, rnn_ops
from cse_models.models.lstm import LSTMConfig


@pytest.fixture(scope="module")
def exported(prepared, data_cfg, btc_features, tmp_path_factory):
    scaler, _ = prepared
    model = build_model("lstm_regressor", LSTMConfig(hidden=32), rngs=nnx.Rngs(1))
    path = export_onnx(model, scaler, data_cfg, tmp_path_factory.mktemp("onnx") / "m.onnx")
    raw = btc_features.select(scaler.feature_names).to_numpy()
    held_back = sliding_windows(raw[-100:], data_cfg.seq_len, data_cfg.horizon)  # test-period rows
    return model, scaler, path, held_back


def test_exported_lstm_uses_the_native_onnx_operator(exported):
    *_, path, _ = exported
    ops = op_types(path)
    assert "LSTM" in ops
    assert "Loop" not in ops and "Scan" not in ops


def test_onnx_matches_jax_at_batch_1_and_7(exported, data_cfg):
    model, scaler, path, held_back = exported
    report = check_parity(model, scaler, data_cfg, path, {INPUT_NAME: held_back}, batches=(1, 7))
    assert report.max_abs_diff <= 1e-5 + 1e-3 * np.abs(held_back[..., 7]).max()


def test_onnx_takes_raw_features_and_returns_prices(exported):
    _, _, path, held_back = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (close,) = session.run(None, {INPUT_NAME: held_back[:3].astype(np.float32)})
    assert close.shape == (3, 1)
    last_close = held_back[:3, -1, 7]
    # An untrained net predicts within the scaler's price range, i.e. the same order of magnitude.
    assert np.all((close[:, 0] > last_close / 10) & (close[:, 0] < last_close * 10))


def test_export_restores_the_training_layer(exported):
    assert rnn_ops.lstm_layer is rnn_ops.lstm_fused


def test_parity_check_fails_on_a_different_model(exported, data_cfg):
    _, scaler, path, held_back = exported
    other = build_model("lstm_regressor", LSTMConfig(hidden=32), rngs=nnx.Rngs(99))
    with pytest.raises(ExportParityError, match="differ"):
        check_parity(other, scaler, data_cfg, path, {INPUT_NAME: held_back})
