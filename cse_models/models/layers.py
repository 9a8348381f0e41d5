"""Pieces shared across architectures, written once: the input stage (check + optional per-window
normalisation), positional encoding, attention pooling, conv blocks.

Shapes are `[batch, seq, channels]` throughout (Flax's channels-last convention).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from cse_models.errors import ConfigError

WINDOW_NORM_EPS = 1e-5


def window_input(model: nnx.Module, x: jax.Array, seq_len: int | None = None, *, exact: bool = False) -> jax.Array:
    """The one input stage of every architecture.

    Checks that `x` is `[batch, seq, cfg.n_features]` with at most (or, `exact`, exactly) `seq_len` steps
    where the architecture fixes the window, failing with both numbers before XLA reports a shape mismatch
    deep in a matmul. With `cfg.window_norm`, normalises each window per feature (RevIN-style, Kim et al.
    2022, without the affine part): (x − mean over time) / std over time, so a model sees the shape of the
    window, not its level — for series whose regime drifts beyond what the train-fit scaler saw."""
    name, width = type(model).__name__, model.cfg.n_features
    if x.ndim != 3 or x.shape[-1] != width:
        raise ConfigError(f"{name} expects input [batch, seq, {width}] ({width} features), got shape {tuple(x.shape)}")
    if seq_len is not None and exact and x.shape[1] != seq_len:
        raise ConfigError(f"{name} expects windows of {seq_len} steps, got {x.shape[1]}")
    if seq_len is not None and x.shape[1] > seq_len:
        raise ConfigError(f"{name} takes windows of at most {seq_len} steps, got {x.shape[1]}")
    if not model.cfg.window_norm:
        return x
    centred = x - jnp.mean(x, axis=1, keepdims=True)
    return centred / jnp.sqrt(jnp.mean(centred**2, axis=1, keepdims=True) + WINDOW_NORM_EPS)


def sinusoidal_encoding(seq_len: int, d_model: int) -> np.ndarray:
    """Vaswani et al. (2017) §3.5: sin on even, cos on odd dimensions; a constant `[seq_len, d_model]`."""
    position = np.arange(seq_len)[:, None]
    rate = np.exp(np.arange(0, d_model, 2) * (-np.log(10000.0) / d_model))
    table = np.zeros((seq_len, d_model), np.float32)
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate)[:, : d_model // 2]
    return table


class PositionalEncoding(nnx.Module):
    """Adds the fixed sinusoidal table; stored as a constant so the ONNX graph carries it as an initializer."""

    def __init__(self, seq_len: int, d_model: int) -> None:
        self.table = nnx.Variable(jnp.asarray(sinusoidal_encoding(seq_len, d_model)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.table[...][: x.shape[1]]


class AttentionPooling(nnx.Module):
    """Softmax-weighted sum over time with a learned scoring vector: `[b, t, c]` → `[b, c]`."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs) -> None:
        self.score = nnx.Linear(channels, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        weights = jax.nn.softmax(self.score(x), axis=1)  # [b, t, 1]
        return jnp.sum(weights * x, axis=1)


class ConvBlock1D(nnx.Module):
    """Conv1D ('SAME') → BatchNorm → ReLU → Dropout: the seed's CNN building block."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dropout: float, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(in_channels, out_channels, kernel_size=(kernel_size,), padding="SAME", rngs=rngs)
        self.norm = nnx.BatchNorm(out_channels, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.dropout(jax.nn.relu(self.norm(self.conv(x))))
