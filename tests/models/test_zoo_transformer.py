"""Transformer family specifics beyond the zoo matrix: config/input errors, causality, the exported graph."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import onnx
import pytest
from flax import nnx
from jax2onnx import to_onnx
from zoo_params import architectures

from cse_models.errors import ConfigError
from cse_models.models import MODELS, build_model
from cse_models.models.configs import TransformerConfig
from cse_models.models.transformer import MASKED, TransformerDecoder, causal_bias

TRANSFORMERS = [name for name in MODELS.names() if MODELS.get(name).family == "transformer"]
SEQ = 12


def _window(batch: int, features: int = 4, seed: int = 0) -> jnp.ndarray:
    return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, SEQ, features)), jnp.float32)


def test_family_has_the_five_seed_transformers():
    assert set(TRANSFORMERS) == {
        "financial_transformer",
        "transformer_with_attention",
        "transformer_encoder",
        "transformer_decoder",
        "transformer_with_cnn",
    }


def test_n_heads_must_divide_d_model():
    with pytest.raises(ConfigError, match="n_heads 3 must divide d_model 32"):
        TransformerConfig.demo(n_heads=3)


@pytest.mark.parametrize("name", architectures(TRANSFORMERS))
def test_maps_batch_seq_features_to_batch_outputs(name):
    model = build_model(name, TransformerConfig.demo(seq_len=SEQ, n_outputs=3), rngs=nnx.Rngs(0))
    model.eval()
    assert model(_window(5)).shape == (5, 3)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_wrong_input_width_names_expected_and_got(name):
    model = build_model(name, TransformerConfig.demo(seq_len=SEQ), rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match=r"expects input \[batch, seq, 4\] \(4 features\), got shape \(2, 12, 9\)"):
        model(_window(2, features=9))


def test_decoder_steps_do_not_see_the_future():
    model = TransformerDecoder(TransformerConfig.demo(seq_len=SEQ), rngs=nnx.Rngs(0))
    model.eval()
    x = _window(3)
    future_changed = x.at[:, 6:].set(_window(3, seed=1)[:, 6:])
    bias = causal_bias(SEQ)
    np.testing.assert_array_equal(model.encoder(x, bias=bias)[:, :6], model.encoder(future_changed, bias=bias)[:, :6])
    assert not np.allclose(model(x), model(future_changed))


def test_exported_attention_is_matmul_with_a_constant_causal_mask(tmp_path):
    model = TransformerDecoder(TransformerConfig.demo(seq_len=SEQ), rngs=nnx.Rngs(0))
    model.eval()
    path = tmp_path / "decoder.onnx"
    to_onnx(lambda x: model(x), [("batch", SEQ, 4)], return_mode="file", output_path=str(path))
    graph = onnx.load(str(path)).graph
    ops = {node.op_type for node in graph.node}
    assert "Einsum" not in ops and {"MatMul", "Softmax"} <= ops
    expected = np.triu(np.full((SEQ, SEQ), MASKED, np.float32), 1)
    constants = [onnx.numpy_helper.to_array(init) for init in graph.initializer]
    assert any(c.size == SEQ * SEQ and np.array_equal(c.reshape(SEQ, SEQ), expected) for c in constants)
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
