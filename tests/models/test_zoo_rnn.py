"""The recurrent zoo: native ONNX LSTM/GRU nodes (never a Loop), a bidirectional layer equal to Flax's
own cells run both ways, and input-width errors that name both widths.

Training + export parity through the scaler is covered for every architecture by test_zoo.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from flax import nnx
from jax2onnx import to_onnx
from zoo_params import architectures

from cse_models.errors import ConfigError
from cse_models.export import rnn_onnx  # noqa: F401  (registers the native LSTM/GRU plugins)
from cse_models.models import build_model, rnn_ops
from cse_models.models.configs import RNNConfig
from cse_models.models.rnn import RecurrentStack

SEQ, FEATURES = 16, 9
CFG = RNNConfig.demo(n_features=FEATURES, seq_len=SEQ, n_outputs=3)
# name → (native op, nodes per layer): a bidirectional layer is two forward nodes, one on reversed time
NATIVE = {
    "financial_lstm": ("LSTM", 1),
    "financial_gru": ("GRU", 1),
    "stacked_lstm": ("LSTM", 1),
    "bidirectional_lstm": ("LSTM", 2),
    "conv_lstm": ("LSTM", 1),
}


def _windows(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, SEQ, FEATURES)).astype(np.float32)


@pytest.mark.parametrize("name", architectures(sorted(NATIVE)))
def test_export_uses_native_recurrent_nodes_and_matches_jax(name):
    model = build_model(name, CFG, rngs=nnx.Rngs(0))
    model.eval()
    jax.clear_caches()  # a trace cached before the plugin patch would export the Loop
    proto = to_onnx(lambda x: model(x), [("batch", SEQ, FEATURES)], model_name=name)
    onnx.checker.check_model(proto)
    ops = [node.op_type for node in proto.graph.node]
    op, per_layer = NATIVE[name]
    assert ops.count(op) == CFG.layers * per_layer
    assert not {"Loop", "Scan", "Einsum"} & set(ops)
    assert rnn_ops.lstm_layer is rnn_ops.lstm_fused and rnn_ops.gru_layer is rnn_ops.gru_fused  # patch undone
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        x = _windows(batch)
        (got,) = session.run(None, {session.get_inputs()[0].name: x})
        np.testing.assert_allclose(got, np.asarray(model(jnp.asarray(x))), rtol=1e-4, atol=1e-5)


def _flax_layer(cell: nnx.Module, x: jax.Array, *, reverse: bool) -> jax.Array:
    """Flax's own cell stepped by `nnx.RNN` over time-major x — the reference the layer functions must equal."""
    rnn = nnx.RNN(cell, time_major=True, reverse=reverse, keep_order=True, rngs=False)
    zeros = jnp.zeros((x.shape[1], cell.hidden_features), x.dtype)
    carry = (zeros, zeros) if isinstance(cell, nnx.OptimizedLSTMCell) else zeros
    return rnn(x, initial_carry=carry)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bidirectional_stack_equals_flax_cells_run_both_ways(kind):
    stack = RecurrentStack(FEATURES, 8, 2, 0.0, kind=kind, bidirectional=True, rngs=nnx.Rngs(1))
    x = jnp.asarray(_windows(3).swapaxes(0, 1))  # [T, B, F]
    expected = x
    for forward, backward in zip(stack.forward, stack.backward, strict=True):
        expected = jnp.concatenate(
            [_flax_layer(forward, expected, reverse=False), _flax_layer(backward, expected, reverse=True)], axis=-1
        )
    got = stack(x)
    assert got.shape == (SEQ, 3, 16)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-6)


def test_lstm_forget_gate_bias_starts_at_one():
    stack = RecurrentStack(FEATURES, 8, 1, 0.0, rngs=nnx.Rngs(0))
    bias = np.asarray(stack.forward[0].dense_h.bias[...])
    np.testing.assert_array_equal(bias[8:16], 1.0)
    np.testing.assert_array_equal(np.delete(bias, np.s_[8:16]), 0.0)


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_wrong_input_width_raises_config_error_naming_both(name):
    model = build_model(name, CFG, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match=rf"expects input \[batch, seq, {FEATURES}\].*got shape \(2, {SEQ}, 4\)"):
        model(jnp.zeros((2, SEQ, 4)))


def test_financial_lstm_bidirectional_switch_exports_two_lstm_nodes_per_layer(tmp_path):
    from cse_models.config import DataConfig
    from cse_models.export.onnx import check_parity, export_onnx
    from cse_models.features.scaling import fit_scaler
    from cse_models.heads.layout import INPUT_NAME

    cfg = RNNConfig.demo(n_features=4, seq_len=12, n_outputs=1, bidirectional=True)
    model = build_model("financial_lstm", cfg, rngs=nnx.Rngs(0))
    names = ("open", "high", "low", "close")
    scaler = fit_scaler("minmax", np.random.default_rng(0).uniform(1, 2, (50, 4)), names)
    data_cfg = DataConfig.seed(feature_set="ohlc4", seq_len=12)
    path = export_onnx(model, scaler, data_cfg, tmp_path / "bi.onnx")
    nodes = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert nodes.count("LSTM") == 2 * cfg.layers
    windows = np.random.default_rng(1).uniform(1, 2, (7, 12, 4)).astype(np.float32)
    check_parity(model, scaler, data_cfg, path, {INPUT_NAME: windows})
