"""The fused LSTM and GRU layers used in training must be the textbook LSTM and GRU, forward and backward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from cse_models.errors import ConfigError, UnknownNameError
from cse_models.models import MODELS, build_model, rnn_ops
from cse_models.models.lstm import LSTMConfig


def _params(seed=0, steps=7, batch=3, features=5, hidden=8):
    keys = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(keys[0], (steps, batch, features))
    wi = jax.random.normal(keys[1], (features, 4 * hidden)) * 0.3
    wh = jax.random.normal(keys[2], (hidden, 4 * hidden)) * 0.3
    b = jax.random.normal(keys[3], (4 * hidden,)) * 0.1
    return x, wi, wh, b


def test_fused_forward_equals_reference():
    args = _params()
    np.testing.assert_allclose(rnn_ops.lstm_fused(*args), rnn_ops.lstm_reference(*args), rtol=1e-5, atol=1e-6)


def test_fused_gradients_equal_autodiff_of_reference():
    args = _params(seed=1)

    def loss(layer):
        return lambda *a: jnp.sum(jnp.sin(layer(*a)))

    fused = jax.grad(loss(rnn_ops.lstm_fused), argnums=(0, 1, 2, 3))(*args)
    reference = jax.grad(loss(rnn_ops.lstm_reference), argnums=(0, 1, 2, 3))(*args)
    for got, want in zip(fused, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _gru_params(seed=0, steps=7, batch=3, features=5, hidden=8):
    keys = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(keys[0], (steps, batch, features))
    wi = jax.random.normal(keys[1], (features, 3 * hidden)) * 0.3
    bi = jax.random.normal(keys[2], (3 * hidden,)) * 0.1
    wh = jax.random.normal(keys[3], (hidden, 3 * hidden)) * 0.3
    return x, wi, bi, wh


def _sin_sum(layer):
    return lambda *a: jnp.sum(jnp.sin(layer(*a)))


def test_fused_gru_forward_equals_reference():
    args = _gru_params()
    np.testing.assert_allclose(rnn_ops.gru_fused(*args), rnn_ops.gru_scan(*args), rtol=1e-5, atol=1e-6)


def test_fused_gru_gradients_equal_autodiff_of_reference():
    args = _gru_params(seed=2)
    fused = jax.grad(_sin_sum(rnn_ops.gru_fused), argnums=(0, 1, 2, 3))(*args)
    reference = jax.grad(_sin_sum(rnn_ops.gru_scan), argnums=(0, 1, 2, 3))(*args)
    for got, want in zip(fused, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_fused_gru_reference_equals_stepping_flax_cell():
    cell = nnx.GRUCell(5, 8, rngs=nnx.Rngs(3))
    x = jax.random.normal(jax.random.key(4), (6, 2, 5))
    carry = jnp.zeros((2, 8))
    stepped = []
    for t in range(6):
        carry, h = cell(carry, x[t])
        stepped.append(h)
    layer = rnn_ops.gru_fused(x, cell.dense_i.kernel[...], cell.dense_i.bias[...], cell.dense_h.kernel[...])
    np.testing.assert_allclose(layer, jnp.stack(stepped), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bf16_recurrent_matmul_stays_close_to_fp32_and_keeps_fp32_gradients(kind):
    layer, args = (rnn_ops.lstm_fused, _params(seed=5)) if kind == "lstm" else (rnn_ops.gru_fused, _gru_params(seed=5))
    grad = jax.grad(_sin_sum(layer), argnums=(0, 1, 2, 3))
    want = grad(*args)
    with rnn_ops.recurrent_matmul_dtype(jnp.bfloat16):
        got = grad(*args)
        jaxpr = str(jax.make_jaxpr(grad)(*args))
    assert "bf16" in jaxpr  # the recurrent GEMM really ran in bf16
    for g, w in zip(got, want, strict=True):
        assert g.dtype == jnp.float32
        np.testing.assert_allclose(g, w, rtol=0.05, atol=0.02 * float(jnp.max(jnp.abs(w))))


def test_reference_equals_stepping_flax_cell():
    cell = nnx.OptimizedLSTMCell(5, 8, rngs=nnx.Rngs(3))
    x = jax.random.normal(jax.random.key(4), (6, 2, 5))
    carry = cell.initialize_carry((2, 5), rngs=nnx.Rngs(0))
    stepped = []
    for t in range(6):
        carry, h = cell(carry, x[t])
        stepped.append(h)
    layer = rnn_ops.lstm_reference(x, cell.dense_i.kernel[...], cell.dense_h.kernel[...], cell.dense_h.bias[...])
    np.testing.assert_allclose(layer, jnp.stack(stepped), rtol=1e-5, atol=1e-6)


def test_lstm_regressor_maps_batch_to_one_output():
    model = build_model("lstm_regressor", LSTMConfig(n_features=9, hidden=16), rngs=nnx.Rngs(0))
    assert model(jnp.ones((4, 24, 9))).shape == (4, 1)


def test_wrong_input_width_names_the_expected_width():
    model = build_model("lstm_regressor", LSTMConfig(n_features=9, hidden=16), rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match=r"expects input \[batch, seq, 9\] \(9 features\), got shape \(1, 24, 4\)"):
        model(jnp.ones((1, 24, 4)))


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="lstm_regressor"):
        build_model("transformerz", rngs=nnx.Rngs(0))
    assert "lstm_regressor" in MODELS


def test_bad_config_names_the_field():
    with pytest.raises(ConfigError, match="dropout"):
        LSTMConfig(dropout=1.5)
