"""The Make Us Rich LSTM: 2 stacked LSTM layers of 128, dropout 0.2 between them, last hidden → Dense.

Parameters live in Flax's own `nnx.OptimizedLSTMCell`s (dense_i.kernel [F,4H], dense_h.kernel [H,4H],
dense_h.bias [4H]); the recurrence runs through `rnn_ops.lstm_layer`, which training fuses and the ONNX
export lowers to the native `LSTM` operator.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
from flax import nnx

from cse_models.models import rnn_ops
from cse_models.models.architectures import register_model
from cse_models.models.configs import require_dropout, require_positive
from cse_models.models.layers import window_input


@dataclass(frozen=True)
class LSTMConfig:
    n_features: int = 9
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.2
    n_outputs: int = 1  # 1 = regression (next close, scaled); n_classes = classification logits
    window_norm: bool = False  # RevIN-style per-window normalisation of the input (layers.window_input)

    def __post_init__(self) -> None:
        require_positive(self, "n_features", "hidden", "layers", "n_outputs")
        require_dropout(self)

    @classmethod
    def demo(cls, **overrides) -> LSTMConfig:
        return replace(cls(hidden=32), **overrides)


@register_model("lstm_regressor", LSTMConfig, family="rnn")
class LSTMRegressor(nnx.Module):
    """Make Us Rich's LSTMRegressor (nn.LSTM(128, 2 layers, dropout 0.2) → hidden[-1] → Linear)."""

    def __init__(self, cfg: LSTMConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        sizes = [cfg.n_features] + [cfg.hidden] * (cfg.layers - 1)
        self.cells = nnx.List([nnx.OptimizedLSTMCell(size, cfg.hidden, rngs=rngs) for size in sizes])
        self.dropout = nnx.Dropout(cfg.dropout, rngs=rngs)
        self.head = nnx.Linear(cfg.hidden, cfg.n_outputs, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """x [batch, seq, features] → [batch, n_outputs]."""
        x = window_input(self, x)
        h = jnp.swapaxes(x, 0, 1)  # time-major once, for the scan and for ONNX's LSTM
        for depth, cell in enumerate(self.cells):
            if depth:
                h = self.dropout(h)  # between layers, as torch's nn.LSTM(dropout=...)
            h = rnn_ops.lstm_layer(h, cell.dense_i.kernel[...], cell.dense_h.kernel[...], cell.dense_h.bias[...])
        return self.head(h[-1])
