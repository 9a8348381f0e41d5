"""Pieces shared across architectures, written once: positional encoding, attention pooling, conv blocks.

Shapes are `[batch, seq, channels]` throughout (Flax's channels-last convention).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


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
