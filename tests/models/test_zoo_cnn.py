"""CNN family behaviours the zoo-wide test does not pin: input checks, shapes, BatchNorm train/eval."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from zoo_params import architectures

from cse_models.errors import ConfigError
from cse_models.models import MODELS, build_model
from cse_models.models.configs import CNNConfig

CNN_NAMES = [name for name in MODELS.names() if MODELS.get(name).family == "cnn"]


def _batch_stats(model: nnx.Module) -> list[np.ndarray]:
    return [np.array(leaf) for leaf in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]


def test_cnn_family_registers_four_architectures():
    assert set(CNN_NAMES) == {"financial_cnn1d", "financial_cnn2d", "residual_cnn1d", "attention_cnn1d"}


@pytest.mark.parametrize("name", architectures(CNN_NAMES))
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_cnn_maps_windows_to_one_row_per_sample(name, n_outputs):
    model = build_model(name, CNNConfig.demo(n_features=4, seq_len=16, n_outputs=n_outputs), rngs=nnx.Rngs(0))
    model.eval()
    assert model(jnp.ones((5, 16, 4))).shape == (5, n_outputs)


@pytest.mark.parametrize("name", CNN_NAMES)
def test_cnn_rejects_wrong_feature_width_naming_both(name):
    model = build_model(name, CNNConfig.demo(n_features=4, seq_len=16), rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match=r"expects input \[batch, seq, 4\] \(4 features\), got shape \(2, 16, 9\)"):
        model(jnp.ones((2, 16, 9)))


@pytest.mark.parametrize("name", architectures(CNN_NAMES))
def test_cnn_batchnorm_updates_in_train_mode_only(name):
    model = build_model(name, CNNConfig.demo(n_features=4, seq_len=16), rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (8, 16, 4)) * 3 + 1
    before = _batch_stats(model)
    model.train()
    model(x)
    trained = _batch_stats(model)
    assert all(not np.array_equal(a, b) for a, b in zip(before, trained, strict=True))
    model.eval()
    model(x)
    assert all(np.array_equal(a, b) for a, b in zip(trained, _batch_stats(model), strict=True))
