"""The CryptoSpreadEdge recurrent zoo: FinancialLSTM, FinancialGRU, StackedLSTM, BidirectionalLSTM, ConvLSTM.

All take `[batch, seq, features]` and return `[batch, n_outputs]` (regression value or logits; no softmax
inside), configured by `RNNConfig`. Parameters live in Flax's own cells (`nnx.OptimizedLSTMCell`,
`nnx.GRUCell`), used only as parameter holders; the recurrence runs through `rnn_ops.lstm_layer` /
`rnn_ops.gru_layer`, looked up on the module at call time, so training gets the fused layer and the ONNX
export swaps in a primitive that lowers to one native `LSTM` / `GRU` node per layer and direction
(../shared/notes/onnx-rnn.md) — never a `Loop`.

The backward direction of a bidirectional layer is the forward layer run on the time-reversed sequence
and reversed back (`jnp.flip`, which jax2onnx emits as a `Gather` over time): one LSTM implementation,
one plugin, and the ONNX graph keeps two forward `LSTM` nodes per layer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from cse_models.errors import ConfigError
from cse_models.models import rnn_ops
from cse_models.models.architectures import register_model
from cse_models.models.configs import RNNConfig
from cse_models.models.layers import AttentionPooling, ConvBlock1D, window_input

FORGET_GATE_BIAS = 1.0  # Jozefowicz et al. (2015): start by remembering, so gradients flow through time early


def _lstm(cell: nnx.OptimizedLSTMCell, h: jax.Array) -> jax.Array:
    """One forward LSTM layer over time-major `[T, B, F]` → `[T, B, H]`."""
    return rnn_ops.lstm_layer(h, cell.dense_i.kernel[...], cell.dense_h.kernel[...], cell.dense_h.bias[...])


def _gru(cell: nnx.GRUCell, h: jax.Array) -> jax.Array:
    """One forward GRU layer over time-major `[T, B, F]` → `[T, B, H]`."""
    return rnn_ops.gru_layer(h, cell.dense_i.kernel[...], cell.dense_i.bias[...], cell.dense_h.kernel[...])


def _lstm_cell(in_features: int, hidden: int, rngs: nnx.Rngs) -> nnx.OptimizedLSTMCell:
    cell = nnx.OptimizedLSTMCell(in_features, hidden, rngs=rngs)
    bias = cell.dense_h.bias[...]  # gates i, f, g, o: the second block is the forget gate
    cell.dense_h.bias[...] = bias.at[hidden : 2 * hidden].set(FORGET_GATE_BIAS)
    return cell


class RecurrentStack(nnx.Module):
    """`layers` recurrent layers (LSTM or GRU), optionally bidirectional, dropout between layers.

    Time-major `[T, B, F]` → `[T, B, H · directions]`, as torch's `nn.LSTM(..., dropout, bidirectional)`:
    a bidirectional layer concatenates [forward | backward] states, and the next layer reads both.
    """

    def __init__(
        self,
        in_features: int,
        hidden: int,
        layers: int,
        dropout: float,
        *,
        kind: str = "lstm",
        bidirectional: bool = False,
        rngs: nnx.Rngs,
    ) -> None:
        if kind not in ("lstm", "gru"):
            raise ConfigError(f"RecurrentStack kind must be 'lstm' or 'gru', got {kind!r}")
        self.kind = kind
        self.directions = 2 if bidirectional else 1
        sizes = [in_features] + [hidden * self.directions] * (layers - 1)

        def make(size: int) -> nnx.Module:
            return _lstm_cell(size, hidden, rngs) if kind == "lstm" else nnx.GRUCell(size, hidden, rngs=rngs)

        self.forward = nnx.List([make(size) for size in sizes])
        self.backward = nnx.List([make(size) for size in sizes] if bidirectional else [])
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def _layer(self, cell: nnx.Module, h: jax.Array) -> jax.Array:
        return _lstm(cell, h) if self.kind == "lstm" else _gru(cell, h)

    def __call__(self, h: jax.Array) -> jax.Array:
        for depth, forward in enumerate(self.forward):
            if depth:
                h = self.dropout(h)
            out = self._layer(forward, h)
            if self.directions == 2:
                backward = jnp.flip(self._layer(self.backward[depth], jnp.flip(h, 0)), 0)
                out = jnp.concatenate([out, backward], axis=-1)
            h = out
        return h


class RegressionHead(nnx.Module):
    """Dropout → Linear: `[B, C]` → `[B, n_outputs]` (a value, or logits for the softmax the export adds)."""

    def __init__(self, in_features: int, n_outputs: int, dropout: float, *, rngs: nnx.Rngs) -> None:
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.linear = nnx.Linear(in_features, n_outputs, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.linear(self.dropout(x))


@register_model("financial_lstm", RNNConfig, family="rnn")
class FinancialLSTM(nnx.Module):
    """Standard LSTM (hidden 128 × 3 layers), final hidden state → Linear. With `bidirectional`, the final
    state of each direction (forward at t = T−1, backward at t = 0), like torch's `h_n`."""

    def __init__(self, cfg: RNNConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        self.rnn = RecurrentStack(
            cfg.n_features, cfg.hidden, cfg.layers, cfg.dropout, bidirectional=cfg.bidirectional, rngs=rngs
        )
        width = cfg.hidden * (2 if cfg.bidirectional else 1)
        self.head = RegressionHead(width, cfg.n_outputs, cfg.dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [batch, seq, features] → [batch, n_outputs]."""
        x = window_input(self, x)
        h = self.rnn(jnp.swapaxes(x, 0, 1))  # [T, B, H·dirs]; time-major once, as ONNX's LSTM wants
        if not self.cfg.bidirectional:
            return self.head(h[-1])
        hidden = self.cfg.hidden
        return self.head(jnp.concatenate([h[-1, :, :hidden], h[0, :, hidden:]], axis=-1))


@register_model("financial_gru", RNNConfig, family="rnn")
class FinancialGRU(nnx.Module):
    """GRU (hidden 128 × 3 layers): 3/4 of the LSTM's parameters, last hidden state → Linear."""

    def __init__(self, cfg: RNNConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        self.rnn = RecurrentStack(cfg.n_features, cfg.hidden, cfg.layers, cfg.dropout, kind="gru", rngs=rngs)
        self.head = RegressionHead(cfg.hidden, cfg.n_outputs, cfg.dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [batch, seq, features] → [batch, n_outputs]."""
        x = window_input(self, x)
        h = self.rnn(jnp.swapaxes(x, 0, 1))  # [T, B, H]
        return self.head(h[-1])


@register_model("stacked_lstm", RNNConfig, family="rnn")
class StackedLSTM(nnx.Module):
    """Stacked LSTM (3 layers) + attention pooling over all time steps → Linear.

    Pooling every step's state, not just the last, lets the model weight the informative candles."""

    def __init__(self, cfg: RNNConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        self.rnn = RecurrentStack(cfg.n_features, cfg.hidden, cfg.layers, cfg.dropout, rngs=rngs)
        self.pool = AttentionPooling(cfg.hidden, rngs=rngs)
        self.head = RegressionHead(cfg.hidden, cfg.n_outputs, cfg.dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [batch, seq, features] → [batch, n_outputs]."""
        x = window_input(self, x)
        h = jnp.swapaxes(self.rnn(jnp.swapaxes(x, 0, 1)), 0, 1)  # [B, T, H]
        return self.head(self.pool(h))


@register_model("bidirectional_lstm", RNNConfig, family="rnn")
class BidirectionalLSTM(nnx.Module):
    """Bidirectional LSTM → multi-head self-attention over [forward | backward] states → mean over time → Linear.

    Attention is residual with dropout and a LayerNorm (post-norm, as Vaswani et al. 2017), so at
    initialisation the pooled features stay close to the recurrent states. `nnx.MultiHeadAttention`
    exports to Gemm/MatMul + Softmax (no Einsum) and matches onnxruntime (tests/models/test_zoo_rnn.py)."""

    def __init__(self, cfg: RNNConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        width = 2 * cfg.hidden
        self.rnn = RecurrentStack(cfg.n_features, cfg.hidden, cfg.layers, cfg.dropout, bidirectional=True, rngs=rngs)
        # No dropout inside the attention: with dropout_rate > 0 jax2onnx exports Einsum instead of MatMul.
        self.attention = nnx.MultiHeadAttention(cfg.n_heads, width, dropout_rate=0.0, decode=False, rngs=rngs)
        self.dropout = nnx.Dropout(cfg.dropout, rngs=rngs)
        self.norm = nnx.LayerNorm(width, rngs=rngs)
        self.head = RegressionHead(width, cfg.n_outputs, cfg.dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [batch, seq, features] → [batch, n_outputs]."""
        x = window_input(self, x)
        h = jnp.swapaxes(self.rnn(jnp.swapaxes(x, 0, 1)), 0, 1)  # [B, T, 2H]
        h = self.norm(h + self.dropout(self.attention(h)))
        return self.head(jnp.mean(h, axis=1))


@register_model("conv_lstm", RNNConfig, family="rnn")
class ConvLSTM(nnx.Module):
    """Conv1D feature extractor (conv → BatchNorm → ReLU → dropout) → LSTM → last hidden state → Linear.

    The convolution ('SAME', so the sequence keeps its length) mixes neighbouring candles into local
    patterns; the LSTM models how those patterns evolve."""

    def __init__(self, cfg: RNNConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        self.conv = ConvBlock1D(cfg.n_features, cfg.conv_channels, cfg.kernel_size, cfg.dropout, rngs=rngs)
        self.rnn = RecurrentStack(cfg.conv_channels, cfg.hidden, cfg.layers, cfg.dropout, rngs=rngs)
        self.head = RegressionHead(cfg.hidden, cfg.n_outputs, cfg.dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [batch, seq, features] → [batch, n_outputs]."""
        x = window_input(self, x)
        h = self.rnn(jnp.swapaxes(self.conv(x), 0, 1))  # [B, T, C] → [T, B, H]
        return self.head(h[-1])
