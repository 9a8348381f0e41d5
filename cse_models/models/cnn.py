"""The CryptoSpreadEdge CNN family: four convolutional readings of a `[batch, seq, features]` window.

- FinancialCNN1D: conv blocks, each halving time with max pooling, flattened into a dense head — the
  seed's "3 conv + pooling + FC" (flattening keeps *where* in the window a pattern sits).
- FinancialCNN2D: the window as a one-channel image over the (time × feature) plane, so a kernel sees
  neighbouring features together; pooled over time only, since the feature axis is short (4 or 9).
- ResidualCNN1D: a stem conv and one ResNet block per `channels` entry, then global mean over time.
- AttentionCNN1D: conv blocks, then multi-head self-attention over time (with sinusoidal positions,
  since attention alone ignores order) and attention pooling.

All take `CNNConfig`, return `[batch, n_outputs]` (1 = regression, k = class logits; no softmax) and use
BatchNorm, which updates its running statistics in train mode and reads them after `model.eval()`.
"""

from __future__ import annotations

from itertools import pairwise

import jax
import jax.numpy as jnp
from flax import nnx

from cse_models.models.architectures import register_model
from cse_models.models.configs import CNNConfig
from cse_models.models.layers import AttentionPooling, ConvBlock1D, PositionalEncoding, window_input


def _pool_time(x: jax.Array) -> jax.Array:
    """Max pooling by 2 along time, `[b, t, ...]` → `[b, t // 2, ...]` (ONNX MaxPool)."""
    window = (2,) + (1,) * (x.ndim - 3)
    return nnx.max_pool(x, window_shape=window, strides=window)


class _DenseHead(nnx.Module):
    """Dense → ReLU → Dropout → Dense: the classifier / regressor on a `[batch, d]` summary."""

    def __init__(self, d_in: int, hidden: int, n_outputs: int, dropout: float, *, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(d_in, hidden, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.out = nnx.Linear(hidden, n_outputs, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.dropout(jax.nn.relu(self.hidden(x))))


@register_model("financial_cnn1d", CNNConfig, family="cnn")
class FinancialCNN1D(nnx.Module):
    """CryptoSpreadEdge FinancialCNN1D: conv blocks with max pooling, flattened into a dense head."""

    def __init__(self, cfg: CNNConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        widths = (cfg.n_features, *cfg.channels)
        self.blocks = nnx.List(
            [ConvBlock1D(a, b, cfg.kernel_size, cfg.dropout, rngs=rngs) for a, b in pairwise(widths)]
        )
        pools, length = [], cfg.seq_len  # pool while there are ≥ 2 steps left to halve
        for _ in cfg.channels:
            pools.append(length >= 2)
            length = length // 2 if length >= 2 else length
        self.pools = tuple(pools)
        self.head = _DenseHead(length * cfg.channels[-1], cfg.hidden, cfg.n_outputs, cfg.dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [batch, seq_len, features] → [batch, n_outputs]; the flatten fixes the window length."""
        x = window_input(self, x, self.cfg.seq_len, exact=True)
        for block, pool in zip(self.blocks, self.pools, strict=True):
            x = block(x)  # [b, t, c]
            if pool:
                x = _pool_time(x)  # [b, t // 2, c]
        return self.head(x.reshape(x.shape[0], -1))


@register_model("financial_cnn2d", CNNConfig, family="cnn")
class FinancialCNN2D(nnx.Module):
    """CryptoSpreadEdge FinancialCNN2D: 2-D convolutions over the (time × feature) plane."""

    def __init__(self, cfg: CNNConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        k = (cfg.kernel_size, cfg.kernel_size)
        widths = (1, *cfg.channels)
        self.convs = nnx.List([nnx.Conv(a, b, kernel_size=k, rngs=rngs) for a, b in pairwise(widths)])
        self.norms = nnx.List([nnx.BatchNorm(c, rngs=rngs) for c in cfg.channels])
        self.dropout = nnx.Dropout(cfg.dropout, rngs=rngs)
        self.head = _DenseHead(cfg.n_features * cfg.channels[-1], cfg.hidden, cfg.n_outputs, cfg.dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [batch, seq, features] → image [b, t, f, 1] → [b, t', f, c] → mean over time → [batch, n_outputs]."""
        x = window_input(self, x, self.cfg.seq_len)
        x = x[..., None]
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = self.dropout(jax.nn.relu(norm(conv(x))))
            if x.shape[1] >= 2:
                x = _pool_time(x)  # time halves; every feature keeps its own column
        x = jnp.mean(x, axis=1)  # [b, f, c]
        return self.head(x.reshape(x.shape[0], -1))


class ResidualBlock1D(nnx.Module):
    """He et al. (2016) basic block in 1-D: relu(x' + BN(conv(relu(BN(conv(x)))))), x' = 1×1 conv if widths differ."""

    def __init__(self, d_in: int, d_out: int, kernel_size: int, *, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(d_in, d_out, kernel_size=(kernel_size,), rngs=rngs)
        self.norm1 = nnx.BatchNorm(d_out, rngs=rngs)
        self.conv2 = nnx.Conv(d_out, d_out, kernel_size=(kernel_size,), rngs=rngs)
        self.norm2 = nnx.BatchNorm(d_out, rngs=rngs)
        self.skip = nnx.Conv(d_in, d_out, kernel_size=(1,), rngs=rngs) if d_in != d_out else None

    def __call__(self, x: jax.Array) -> jax.Array:
        """[b, t, d_in] → [b, t, d_out]."""
        y = self.norm2(self.conv2(jax.nn.relu(self.norm1(self.conv1(x)))))
        return jax.nn.relu(y + (x if self.skip is None else self.skip(x)))


@register_model("residual_cnn1d", CNNConfig, family="cnn")
class ResidualCNN1D(nnx.Module):
    """CryptoSpreadEdge ResidualCNN1D: a stem conv, residual blocks, global mean pooling, dense head."""

    def __init__(self, cfg: CNNConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        self.stem = ConvBlock1D(cfg.n_features, cfg.channels[0], cfg.kernel_size, 0.0, rngs=rngs)
        widths = (cfg.channels[0], *cfg.channels)
        self.blocks = nnx.List([ResidualBlock1D(a, b, cfg.kernel_size, rngs=rngs) for a, b in pairwise(widths)])
        self.dropout = nnx.Dropout(cfg.dropout, rngs=rngs)
        self.head = _DenseHead(cfg.channels[-1], cfg.hidden, cfg.n_outputs, cfg.dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [batch, seq, features] → [b, t, channels[-1]] → mean over time → [batch, n_outputs]."""
        x = window_input(self, x, self.cfg.seq_len)
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.dropout(jnp.mean(x, axis=1)))


@register_model("attention_cnn1d", CNNConfig, family="cnn")
class AttentionCNN1D(nnx.Module):
    """CryptoSpreadEdge AttentionCNN1D: conv blocks, multi-head self-attention over time, attention pooling."""

    def __init__(self, cfg: CNNConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        widths = (cfg.n_features, *cfg.channels)
        d = cfg.channels[-1]
        self.blocks = nnx.List(
            [ConvBlock1D(a, b, cfg.kernel_size, cfg.dropout, rngs=rngs) for a, b in pairwise(widths)]
        )
        self.position = PositionalEncoding(cfg.seq_len, d)
        self.attention = nnx.MultiHeadAttention(cfg.n_heads, d, decode=False, rngs=rngs)
        self.norm = nnx.LayerNorm(d, rngs=rngs)
        self.pool = AttentionPooling(d, rngs=rngs)
        self.dropout = nnx.Dropout(cfg.dropout, rngs=rngs)
        self.head = _DenseHead(d, cfg.hidden, cfg.n_outputs, cfg.dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [batch, seq, features] → conv [b, t, d] → norm(h + MHA(h)) → pooled [b, d] → [batch, n_outputs]."""
        x = window_input(self, x, self.cfg.seq_len)
        for block in self.blocks:
            x = block(x)
        h = self.position(x)
        h = self.norm(h + self.dropout(self.attention(h)))
        return self.head(self.pool(h))
