"""Recurrent layer functions shared by training and export.

Models call `rnn_ops.lstm_layer(...)` / `rnn_ops.gru_layer(...)` *through the module attribute*, so that the
ONNX export (`cse_models.export.rnn_onnx`) can swap them for primitives that lower to ONNX's native `LSTM` /
`GRU` nodes. Training runs the fused implementations below; there is one LSTM and one GRU in the code.

Why fused (../shared/notes/jax-lstm-training.md, benchmarks/README.md): on CPU a time step is one small
GEMM plus many tiny elementwise kernels, and the kernels, not the GEMM's FLOPs, set the pace.
- Forward: one `tanh` over all gates (sigmoid(x) = 0.5·tanh(x/2) + 0.5, with the sigmoid columns of the
  weights pre-scaled by 0.5), so a step is one GEMM and one fused transcendental pass.
- Backward (cuDNN-style custom VJP): the forward pass stores per-step coefficients (the LSTM in its loop,
  the GRU in one vectorised pass after it), so that the reverse loop's step is one elementwise kernel (the
  pre-activation gradient `dz_t` from `dh`, `dc` and the coefficients) and one GEMM (`dz_t @ W_hᵀ`). The
  weight gradients are large GEMMs over all `T·B` rows after the loop.
- Optionally the recurrent GEMM runs in bf16 with fp32 accumulation (`recurrent_matmul_dtype`); master
  weights, activations and the other GEMMs stay fp32.

Shapes: x [T, B, F] time-major. LSTM: wi [F, 4H]; wh [H, 4H]; b [4H]; gates in Flax's i, f, g, o order (the
parameters of `nnx.OptimizedLSTMCell`). GRU: wi [F, 3H]; bi [3H]; wh [H, 3H] (no bias); gates r, z, n as in
`nnx.GRUCell`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

_RECURRENT_DTYPE: ContextVar[np.dtype | None] = ContextVar("recurrent_matmul_dtype", default=None)


@contextmanager
def recurrent_matmul_dtype(dtype: jnp.dtype | None) -> Iterator[None]:
    """Run the recurrent GEMM (`h @ W_h` and its transpose in the backward loop) of layers traced inside this
    block in `dtype` with fp32 accumulation, e.g. `jnp.bfloat16` (Zen 4 / AVX-512 BF16: ~2× that GEMM).
    A trace-time setting: the jitted function must be traced (not served from its cache) inside the block."""
    token = _RECURRENT_DTYPE.set(None if dtype is None else np.dtype(dtype))
    try:
        yield
    finally:
        _RECURRENT_DTYPE.reset(token)


def _recurrent_weight(w: jax.Array, dtype: np.dtype | None) -> jax.Array:
    """The recurrent weight in the GEMM's dtype, cast once outside the loop."""
    return w if dtype is None else w.astype(dtype)


def _recurrent_dot(h: jax.Array, w: jax.Array) -> jax.Array:
    """h @ w with `w` from `_recurrent_weight`: in w's dtype, accumulated and returned in h's."""
    if w.dtype == h.dtype:
        return h @ w
    return jnp.dot(h.astype(w.dtype), w, preferred_element_type=h.dtype)


def _shift_in_time(a: jax.Array) -> jax.Array:
    """a[t-1] at t, zeros at t = 0 (the zero initial state)."""
    return jnp.concatenate([jnp.zeros_like(a[:1]), a[:-1]], 0)


def _input_projection(x: jax.Array, wi: jax.Array, b: jax.Array) -> jax.Array:
    """x [T, B, F] @ wi [F, G] + b: one GEMM over all steps before the loop → [T, B, G]."""
    steps, batch, features = x.shape
    return (x.reshape(steps * batch, features) @ wi).reshape(steps, batch, wi.shape[1]) + b


def _weight_gradients(x, wi, h_prev, dz_x, dz_h):
    """dx, dW_i, dW_h, db from the per-step pre-activation gradients `dz_x` (input side) and `dz_h`
    (recurrent side), [T, B, G] each: four GEMMs over all T·B rows."""
    steps, batch, features = x.shape
    rows = steps * batch
    dz_x2, dz_h2 = dz_x.reshape(rows, -1), dz_h.reshape(rows, -1)
    dx = (dz_x2 @ wi.T).reshape(steps, batch, features)
    return dx, x.reshape(rows, features).T @ dz_x2, h_prev.reshape(rows, -1).T @ dz_h2, dz_x2.sum(0)


# ------------------------------------------------------------------------------------------------ LSTM


def _gate_affine(hidden: int, dtype: jnp.dtype) -> tuple[jax.Array, jax.Array]:
    """Per-column (scale, shift) turning one tanh into sigmoid for i, f, o and tanh for g."""
    half, one = jnp.full(hidden, 0.5), jnp.ones(hidden)
    scale = jnp.concatenate([half, half, one, half]).astype(dtype)
    shift = jnp.concatenate([half, half, jnp.zeros(hidden), half]).astype(dtype)
    return scale, shift


def _lstm_forward(x, wi, wh, b, rdtype, residuals: bool = False):
    """Hidden states [T, B, H] of every step; with `residuals`, also the backward's per-step coefficients
    (`_lstm_fwd`) — computed in the loop, where the gates already are in registers: at seq 64 that measured
    4–9 % faster than one vectorised pass over stored gates and cell states after the loop."""
    batch, hidden = x.shape[1], wh.shape[0]
    scale, shift = _gate_affine(hidden, x.dtype)
    xp = _input_projection(x, wi, b) * scale
    wh_scaled = _recurrent_weight(wh * scale, rdtype)
    scale_sq = scale * scale

    def step(carry, xt):
        c_prev, h = carry
        t = jnp.tanh(xt + _recurrent_dot(h, wh_scaled))
        i, f, g, o = jnp.split(t * scale + shift, 4, axis=-1)
        c = f * c_prev + i * g
        tanh_c = jnp.tanh(c)
        h = o * tanh_c
        if not residuals:
            return (c, h), h
        k = jnp.concatenate([g, c_prev, i, tanh_c], -1) * scale_sq * (1 - t * t)
        return (c, h), (h, k, o * (1 - tanh_c * tanh_c), f)

    zeros = jnp.zeros((batch, hidden), x.dtype)
    return jax.lax.scan(step, (zeros, zeros), xp)[1]


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def _lstm(x, wi, wh, b, rdtype):
    return _lstm_forward(x, wi, wh, b, rdtype)


def _lstm_fwd(x, wi, wh, b, rdtype):
    """Forward with the backward's per-step coefficients: with a = t · scale + shift split into i, f, g, o,
    dz = [dc·g, dc·c_prev, dc·i, dh·tanh(c)] · scale² · (1 − t²) = where(o-gate, dh, dc) · k, and
    dc = dc_next + dh · o · (1 − tanh²(c)) = dc_next + dh · p; dc_prev = dc · f."""
    hs, k, p, f = _lstm_forward(x, wi, wh, b, rdtype, residuals=True)
    return hs, (x, wi, wh, hs, k, p, f)


def _lstm_bwd(rdtype, residuals, dhs):
    x, wi, wh, hs, k, p, f = residuals
    batch, hidden = x.shape[1], wh.shape[0]
    wh_t = _recurrent_weight(wh.T, rdtype)
    is_o = jnp.arange(4 * hidden) >= 3 * hidden

    def step(carry, inputs):
        dh_next, dc_next = carry
        dh_t, k_t, p_t, f_t = inputs
        dh = dh_t + dh_next
        dc = dc_next + dh * p_t
        dz = jnp.where(is_o, jnp.tile(dh, (1, 4)), jnp.tile(dc, (1, 4))) * k_t
        return (_recurrent_dot(dz, wh_t), dc * f_t), dz

    zeros = jnp.zeros((batch, hidden), x.dtype)
    _, dz = jax.lax.scan(step, (zeros, zeros), (dhs, k, p, f), reverse=True)
    return _weight_gradients(x, wi, _shift_in_time(hs), dz, dz)


_lstm.defvjp(_lstm_fwd, _lstm_bwd)


def lstm_fused(x: jax.Array, wi: jax.Array, wh: jax.Array, b: jax.Array) -> jax.Array:
    """All hidden states [T, B, H] of one forward LSTM layer starting from zero state."""
    return _lstm(x, wi, wh, b, _RECURRENT_DTYPE.get())


def lstm_reference(x: jax.Array, wi: jax.Array, wh: jax.Array, b: jax.Array) -> jax.Array:
    """The textbook scan with autodiff: the yardstick the fused layer is tested against."""
    xp = _input_projection(x, wi, b)

    def step(carry, xt):
        c, h = carry
        i, f, g, o = jnp.split(xt + h @ wh, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h

    zeros = jnp.zeros((x.shape[1], wh.shape[0]), x.dtype)
    return jax.lax.scan(step, (zeros, zeros), xp)[1]


# ------------------------------------------------------------------------------------------------- GRU


def _gru_forward(x, wi, bi, wh, rdtype):
    """Hidden states [T, B, H]; r, z [T, B, 2H]; n and h @ W_hn [T, B, H] of every step.

    r and z come from one tanh over [B, 2H] (sigmoid(x) = 0.5·tanh(x/2) + 0.5); n needs r first."""
    batch, hidden = x.shape[1], wh.shape[0]
    xp = _input_projection(x, wi, bi)
    wh_r = _recurrent_weight(wh, rdtype)

    def step(h, xt):
        hp = _recurrent_dot(h, wh_r)
        rz = 0.5 * jnp.tanh(0.5 * (xt[:, : 2 * hidden] + hp[:, : 2 * hidden])) + 0.5
        hn = hp[:, 2 * hidden :]
        n = jnp.tanh(xt[:, 2 * hidden :] + rz[:, :hidden] * hn)
        z = rz[:, hidden:]
        h = n + z * (h - n)
        return h, (h, rz, n, hn)

    _, outs = jax.lax.scan(step, jnp.zeros((batch, hidden), x.dtype), xp)
    return outs


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def _gru(x, wi, bi, wh, rdtype):
    return _gru_forward(x, wi, bi, wh, rdtype)[0]


def _gru_fwd(x, wi, bi, wh, rdtype):
    """Forward, then the backward's coefficients in one vectorised pass. With h = n + z·(h_prev − n):
    dn_pre = dh · (1 − z)(1 − n²) = dh · kn; the recurrent-side pre-activation gradient is
    [dn_pre · hn · r(1 − r), dh · (h_prev − n) · z(1 − z), dn_pre · r] = where(z-block, dh, dn_pre) · k;
    the input side differs only in its n block (dn_pre, not dn_pre · r); dh_prev = dh · z + dz_h @ W_hᵀ."""
    hs, rz, n, hn = _gru_forward(x, wi, bi, wh, rdtype)
    hidden = wh.shape[0]
    r, z = rz[..., :hidden], rz[..., hidden:]
    k = jnp.concatenate([hn * r * (1 - r), (_shift_in_time(hs) - n) * z * (1 - z), r], -1)
    return hs, (x, wi, wh, hs, k, (1 - z) * (1 - n * n), z)


def _gru_bwd(rdtype, residuals, dhs):
    x, wi, wh, hs, k, kn, z = residuals
    batch, hidden = x.shape[1], wh.shape[0]
    wh_t = _recurrent_weight(wh.T, rdtype)
    is_z = (jnp.arange(3 * hidden) >= hidden) & (jnp.arange(3 * hidden) < 2 * hidden)

    def step(dh_next, inputs):
        dh_t, k_t, kn_t, z_t = inputs
        dh = dh_t + dh_next
        dn = dh * kn_t
        dz_h = jnp.where(is_z, jnp.tile(dh, (1, 3)), jnp.tile(dn, (1, 3))) * k_t
        return dh * z_t + _recurrent_dot(dz_h, wh_t), (dz_h, dn)

    _, (dz_h, dn) = jax.lax.scan(step, jnp.zeros((batch, hidden), x.dtype), (dhs, k, kn, z), reverse=True)
    dz_x = jnp.concatenate([dz_h[..., : 2 * hidden], dn], -1)
    dx, dwi, dwh, dbi = _weight_gradients(x, wi, _shift_in_time(hs), dz_x, dz_h)
    return dx, dwi, dbi, dwh


_gru.defvjp(_gru_fwd, _gru_bwd)


def gru_fused(x: jax.Array, wi: jax.Array, bi: jax.Array, wh: jax.Array) -> jax.Array:
    """All hidden states [T, B, H] of one forward GRU layer starting from zero state."""
    return _gru(x, wi, bi, wh, _RECURRENT_DTYPE.get())


def gru_scan(x: jax.Array, wi: jax.Array, bi: jax.Array, wh: jax.Array) -> jax.Array:
    """The textbook GRU scan with autodiff: the yardstick `gru_fused` is tested against (and the ONNX
    lowering's reference)."""
    hidden = wh.shape[0]
    xp = _input_projection(x, wi, bi)

    def step(h, xt):
        xr, xz, xn = jnp.split(xt, 3, axis=-1)
        hr, hz, hn = jnp.split(h @ wh, 3, axis=-1)
        r = jax.nn.sigmoid(xr + hr)
        z = jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        h = (1.0 - z) * n + z * h
        return h, h

    return jax.lax.scan(step, jnp.zeros((x.shape[1], hidden), x.dtype), xp)[1]


# The names models call; the export patch swaps these attributes for ONNX-lowerable primitives.
lstm_layer = lstm_fused
gru_layer = gru_fused
