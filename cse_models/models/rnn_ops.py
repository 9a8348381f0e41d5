"""Recurrent layer functions shared by training and export.

Models call `rnn_ops.lstm_layer(...)` *through the module attribute*, so that the ONNX export
(`cse_models.export.rnn_onnx`) can swap it for a primitive that lowers to ONNX's native `LSTM` node.
Training runs the fused implementation below; there is one LSTM in the code.

Why fused (../shared/notes/jax-lstm-training.md): on CPU the gate arithmetic, not the matmul, is the
cost. One `tanh` over all four gates (sigmoid(x) = 0.5·tanh(x/2) + 0.5, with the i, f, o columns
pre-scaled by 0.5) and a cuDNN-style custom VJP — whose backward loop carries only dh, dc and leaves the
weight gradients to four large GEMMs after it — brought JAX from 0.6× to 1.0× PyTorch at seq 24.

Shapes: x [T, B, F] time-major; wi [F, 4H]; wh [H, 4H]; b [4H]; gates in Flax's i, f, g, o order
(the parameters of `nnx.OptimizedLSTMCell`: dense_i.kernel, dense_h.kernel, dense_h.bias).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _gate_affine(hidden: int, dtype: jnp.dtype) -> tuple[jax.Array, jax.Array]:
    """Per-column (scale, shift) turning one tanh into sigmoid for i, f, o and tanh for g."""
    half, one = jnp.full(hidden, 0.5), jnp.ones(hidden)
    scale = jnp.concatenate([half, half, one, half]).astype(dtype)
    shift = jnp.concatenate([half, half, jnp.zeros(hidden), half]).astype(dtype)
    return scale, shift


def _lstm_forward(x: jax.Array, wi: jax.Array, wh: jax.Array, b: jax.Array):
    steps, batch, features = x.shape
    hidden = wh.shape[0]
    scale, shift = _gate_affine(hidden, x.dtype)
    xp = ((x.reshape(steps * batch, features) @ wi).reshape(steps, batch, 4 * hidden) + b) * scale
    wh_scaled = wh * scale

    def step(carry, xt):
        c, h = carry
        t = jnp.tanh(xt + h @ wh_scaled)
        i, f, g, o = jnp.split(t * scale + shift, 4, axis=-1)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (c, h), (h, c, t)

    zeros = jnp.zeros((batch, hidden), x.dtype)
    _, (hs, cs, ts) = jax.lax.scan(step, (zeros, zeros), xp)
    return hs, cs, ts


@jax.custom_vjp
def lstm_fused(x: jax.Array, wi: jax.Array, wh: jax.Array, b: jax.Array) -> jax.Array:
    """All hidden states [T, B, H] of one forward LSTM layer starting from zero state."""
    return _lstm_forward(x, wi, wh, b)[0]


def _lstm_fwd(x, wi, wh, b):
    hs, cs, ts = _lstm_forward(x, wi, wh, b)
    return hs, (x, wi, wh, hs, cs, ts)


def _lstm_bwd(residuals, dhs):
    x, wi, wh, hs, cs, ts = residuals
    steps, batch, features = x.shape
    hidden = wh.shape[0]
    scale, shift = _gate_affine(hidden, x.dtype)
    scale_sq = scale * scale
    c_prev = jnp.concatenate([jnp.zeros_like(cs[:1]), cs[:-1]], 0)
    wh_t = wh.T

    def step(carry, inputs):
        dh_next, dc_next = carry
        dh_t, c_t, cp_t, t = inputs
        i, f, g, o = jnp.split(t * scale + shift, 4, axis=-1)
        dh = dh_t + dh_next
        tanh_c = jnp.tanh(c_t)
        dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
        da = jnp.concatenate([dc * g, dc * cp_t, dc * i, dh * tanh_c], -1)
        dz = da * scale_sq * (1 - t * t)
        return (dz @ wh_t, dc * f), dz

    zeros = jnp.zeros((batch, hidden), x.dtype)
    _, dz = jax.lax.scan(step, (zeros, zeros), (dhs, cs, c_prev, ts), reverse=True)
    dz2 = dz.reshape(steps * batch, 4 * hidden)
    h_prev = jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]], 0).reshape(steps * batch, hidden)
    dx = (dz2 @ wi.T).reshape(steps, batch, features)
    return dx, x.reshape(steps * batch, features).T @ dz2, h_prev.T @ dz2, dz2.sum(0)


lstm_fused.defvjp(_lstm_fwd, _lstm_bwd)


def lstm_reference(x: jax.Array, wi: jax.Array, wh: jax.Array, b: jax.Array) -> jax.Array:
    """The textbook scan with autodiff: the yardstick the fused layer is tested against."""
    steps, batch, features = x.shape
    hidden = wh.shape[0]
    xp = (x.reshape(steps * batch, features) @ wi).reshape(steps, batch, 4 * hidden) + b

    def step(carry, xt):
        c, h = carry
        i, f, g, o = jnp.split(xt + h @ wh, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h

    zeros = jnp.zeros((batch, hidden), x.dtype)
    return jax.lax.scan(step, (zeros, zeros), xp)[1]


def gru_scan(x: jax.Array, wi: jax.Array, bi: jax.Array, wh: jax.Array) -> jax.Array:
    """x [T,B,F]; wi [F,3H]; bi [3H]; wh [H,3H] without bias; gates r, z, n as in `nnx.GRUCell`."""
    steps, batch, features = x.shape
    hidden = wh.shape[0]
    xp = (x.reshape(steps * batch, features) @ wi).reshape(steps, batch, 3 * hidden) + bi

    def step(h, xt):
        xr, xz, xn = jnp.split(xt, 3, axis=-1)
        hr, hz, hn = jnp.split(h @ wh, 3, axis=-1)
        r = jax.nn.sigmoid(xr + hr)
        z = jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        h = (1.0 - z) * n + z * h
        return h, h

    return jax.lax.scan(step, jnp.zeros((batch, hidden), x.dtype), xp)[1]


# The names models call; the export patch swaps these attributes for ONNX-lowerable primitives.
lstm_layer = lstm_fused
gru_layer = gru_scan
