"""The CryptoSpreadEdge transformer family: one pre-norm block, five ways to feed it and read it out.

Seed defaults (TransformerConfig): d_model 256, 8 heads, 6 layers, window 100, dropout 0.1, 3 classes.
Every model maps `[batch, seq, n_features]` → `[batch, n_outputs]` (logits or the scaled close; no
softmax inside — serving adds it). The members differ only where the design question differs:

| name                       | stem               | mask   | read-out                                         |
|----------------------------|--------------------|--------|--------------------------------------------------|
| financial_transformer      | linear + sin PE    | none   | a learned query cross-attends (1-token decoder)  |
| transformer_with_attention | linear + sin PE    | none   | additive attention pooling (one score per step)  |
| transformer_encoder        | linear + sin PE    | none   | mean over time                                   |
| transformer_decoder        | linear + sin PE    | causal | the last step (the only one that saw the window) |
| transformer_with_cnn       | 2 conv blocks + PE | none   | mean over time                                   |

Attention is written out (`MultiHeadAttention` below): Flax's `nnx.MultiHeadAttention` exports and matches,
but jax2onnx 0.17 lowers its two products to Einsum; ours reaches onnxruntime as Gemm/MatMul + Softmax.
The causal mask is a numpy constant built from the static window length: an initializer in the graph.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from cse_models.models.architectures import register_model
from cse_models.models.configs import TransformerConfig
from cse_models.models.layers import AttentionPooling, ConvBlock1D, PositionalEncoding, window_input


class MultiHeadAttention(nnx.Module):
    """Scaled dot-product attention (Vaswani et al. 2017 §3.2) over `n_heads` heads of d_model / n_heads.

    Written out (Linear projections, reshapes, `jnp.matmul`, `jax.nn.softmax`) rather than taken from
    `nnx.MultiHeadAttention`, whose jax2onnx lowering emits two Einsum nodes per layer; here onnxruntime
    sees Gemm + MatMul + Softmax. `x` `[b, t, d]` queries `context` `[b, s, d]` (x itself when None);
    `bias` is an additive `[t, s]` numpy constant (0 or MASKED), so a mask becomes one Add on an initializer.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float, *, rngs: nnx.Rngs) -> None:
        self.n_heads = n_heads
        self.query = nnx.Linear(d_model, d_model, rngs=rngs)
        self.key_value = nnx.Linear(d_model, 2 * d_model, rngs=rngs)
        self.out = nnx.Linear(d_model, d_model, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def _heads(self, h: jax.Array) -> jax.Array:
        """`[b, t, d]` → `[b, heads, t, d / heads]`; -1 keeps the batch axis symbolic in the graph."""
        return h.reshape(-1, h.shape[1], self.n_heads, h.shape[2] // self.n_heads).transpose(0, 2, 1, 3)

    def __call__(self, x: jax.Array, context: jax.Array | None = None, bias: np.ndarray | None = None) -> jax.Array:
        key, value = jnp.split(self.key_value(x if context is None else context), 2, axis=-1)
        q, k, v = self._heads(self.query(x)), self._heads(key), self._heads(value)
        scores = jnp.matmul(q, k.transpose(0, 1, 3, 2)) * (q.shape[-1] ** -0.5)  # [b, heads, t, s]
        if bias is not None:
            scores = scores + bias
        weights = self.dropout(jax.nn.softmax(scores, axis=-1))
        h = jnp.matmul(weights, v).transpose(0, 2, 1, 3)  # [b, t, heads, d / heads]
        return self.out(h.reshape(-1, x.shape[1], x.shape[2]))


class TransformerBlock(nnx.Module):
    """Pre-norm block (Xiong et al. 2020): x + MHA(LN(x)), then x + FFN(LN(x)); `[b, t, d]` → `[b, t, d]`.

    Pre-norm keeps the residual path an identity, so 6 layers train without warm-up. With `context`
    the attention is cross-attention (queries from `x`, keys/values from `context` `[b, s, d]`), which
    is how FinancialTransformer's query token reads the encoded window with the same block.
    """

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, dropout: float, *, rngs: nnx.Rngs) -> None:
        self.norm_attn = nnx.LayerNorm(d_model, rngs=rngs)
        self.attn = MultiHeadAttention(d_model, n_heads, dropout, rngs=rngs)
        self.norm_ff = nnx.LayerNorm(d_model, rngs=rngs)
        self.ff_in = nnx.Linear(d_model, ff_dim, rngs=rngs)
        self.ff_out = nnx.Linear(ff_dim, d_model, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array, context: jax.Array | None = None, bias: np.ndarray | None = None) -> jax.Array:
        x = x + self.dropout(self.attn(self.norm_attn(x), context, bias))
        h = self.ff_out(self.dropout(jax.nn.gelu(self.ff_in(self.norm_ff(x)))))
        return x + self.dropout(h)


class TransformerStack(nnx.Module):
    """Project `[b, t, n_in]` to d_model, add the sinusoidal position, run `layers` blocks, final LayerNorm.

    The final LayerNorm is the pre-norm convention: the blocks leave the residual stream unnormalised.
    """

    def __init__(self, cfg: TransformerConfig, n_in: int, *, rngs: nnx.Rngs) -> None:
        self.embed = nnx.Linear(n_in, cfg.d_model, rngs=rngs)
        self.position = PositionalEncoding(cfg.seq_len, cfg.d_model)
        self.dropout = nnx.Dropout(cfg.dropout, rngs=rngs)
        self.blocks = nnx.List(
            [TransformerBlock(cfg.d_model, cfg.n_heads, cfg.ff_dim, cfg.dropout, rngs=rngs) for _ in range(cfg.layers)]
        )
        self.norm = nnx.LayerNorm(cfg.d_model, rngs=rngs)

    def __call__(self, x: jax.Array, bias: np.ndarray | None = None) -> jax.Array:
        h = self.dropout(self.position(self.embed(x)))
        for block in self.blocks:
            h = block(h, bias=bias)
        return self.norm(h)


# Added to masked scores. Not -inf/-1e9: onnxruntime's Softmax falls into a slow path (~5-10× on the
# [b, h, t, t] scores, measured with ORT 1.32) whenever exp underflows past float32's normal range
# (below ≈ -87). e^-60 ≈ 1e-26 is 19 orders below float32 resolution for weights that sum to 1, so the
# mask stays exact in practice unless a future logit beats the row maximum by more than ~40.
MASKED = -60.0


def causal_bias(seq: int) -> np.ndarray:
    """`[seq, seq]` additive mask: 0 where step i may attend step j ≤ i, MASKED above the diagonal.

    numpy, built from the static window length, so the ONNX graph stores it as an initializer."""
    return np.triu(np.full((seq, seq), MASKED, np.float32), k=1)


class _TransformerModel(nnx.Module):
    """Shared by the family: the input check, the encoder stack and the dropout → Linear head."""

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs, n_in: int | None = None) -> None:
        self.cfg = cfg
        self.encoder = TransformerStack(cfg, cfg.n_features if n_in is None else n_in, rngs=rngs)
        self.dropout = nnx.Dropout(cfg.dropout, rngs=rngs)
        self.head = nnx.Linear(cfg.d_model, cfg.n_outputs, rngs=rngs)

    def _out(self, pooled: jax.Array) -> jax.Array:
        return self.head(self.dropout(pooled))


@register_model("financial_transformer", TransformerConfig, family="transformer")
class FinancialTransformer(_TransformerModel):
    """Encoder-decoder: a learned query token cross-attends to the encoded window (the seed's default).

    Why: the standard Transformer reads out through a decoder; for one prediction per window the decoder
    needs one query, so the read-out is multi-head, content-based and learned (unlike mean pooling,
    which weighs every step alike, or a single additive score). `[b, t, f]` → `[b, n_outputs]`.
    """

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs) -> None:
        super().__init__(cfg, rngs=rngs)
        self.query = nnx.Param(0.02 * jax.random.normal(rngs.params(), (1, 1, cfg.d_model)))
        self.decoder = TransformerBlock(cfg.d_model, cfg.n_heads, cfg.ff_dim, cfg.dropout, rngs=rngs)
        self.decoder_norm = nnx.LayerNorm(cfg.d_model, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = window_input(self, x, self.cfg.seq_len)
        memory = self.encoder(x)  # [b, t, d]
        query = jnp.zeros_like(memory[:, :1]) + self.query[...]  # [b, 1, d]; keeps the batch axis symbolic
        return self._out(self.decoder_norm(self.decoder(query, context=memory))[:, 0])


@register_model("transformer_with_attention", TransformerConfig, family="transformer")
class TransformerWithAttention(_TransformerModel):
    """Encoder, then additive attention pooling: one learned score per step, softmax over time, weighted sum.

    Why: the seed's "final attention for classification" — cheaper than a query token (one Linear(d, 1)),
    and its weights say which candles drove the call. `[b, t, f]` → `[b, n_outputs]`.
    """

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs) -> None:
        super().__init__(cfg, rngs=rngs)
        self.pool = AttentionPooling(cfg.d_model, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = window_input(self, x, self.cfg.seq_len)
        return self._out(self.pool(self.encoder(x)))


@register_model("transformer_encoder", TransformerConfig, family="transformer")
class TransformerEncoder(_TransformerModel):
    """Encoder only, mean over time: the plain `nn.TransformerEncoder` + global average pooling baseline.

    Why: no read-out parameters at all, so it isolates what the encoder itself learns; the reference the
    other members must beat. `[b, t, f]` → `[b, n_outputs]`.
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        x = window_input(self, x, self.cfg.seq_len)
        return self._out(jnp.mean(self.encoder(x), axis=1))


@register_model("transformer_decoder", TransformerConfig, family="transformer")
class TransformerDecoder(_TransformerModel):
    """Decoder only (GPT-style): causal self-attention, prediction from the last step.

    Why: step i sees only steps ≤ i, so each position is a forecast made without the future; the last
    position is the one that has read the whole window. The mask is a graph constant. `[b, t, f]` →
    `[b, n_outputs]`.
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        x = window_input(self, x, self.cfg.seq_len)
        return self._out(self.encoder(x, bias=causal_bias(x.shape[1]))[:, -1])


@register_model("transformer_with_cnn", TransformerConfig, family="transformer")
class TransformerWithCNN(_TransformerModel):
    """Two conv blocks (Conv1D → BatchNorm → ReLU) in front of the encoder, then mean over time.

    Why: the convolutions turn raw candles into local patterns (a receptive field of 2·(k-1)+1 steps)
    before attention relates them globally; 'SAME' padding keeps the window length, so positions still
    align with the sinusoidal table. `[b, t, f]` → `[b, t, conv_channels]` → `[b, n_outputs]`.
    """

    def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs) -> None:
        super().__init__(cfg, rngs=rngs, n_in=cfg.conv_channels)
        self.convs = nnx.List(
            [
                ConvBlock1D(cfg.n_features, cfg.conv_channels, cfg.kernel_size, cfg.dropout, rngs=rngs),
                ConvBlock1D(cfg.conv_channels, cfg.conv_channels, cfg.kernel_size, cfg.dropout, rngs=rngs),
            ]
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        x = window_input(self, x, self.cfg.seq_len)
        h = x
        for conv in self.convs:
            h = conv(h)
        return self._out(jnp.mean(self.encoder(h), axis=1))
