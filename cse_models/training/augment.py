"""Time-series augmentation of training windows, inside the jitted step.

Jitter (additive Gaussian noise) and scaling (a Gaussian factor per window and feature) follow Um et al.
(2017); window slicing (Le Guennec et al. 2016) crops a random `window_slice` fraction of the window and
stretches it back to `seq_len` by linear interpolation. The key is `fold_in(key(seed), step)`, so a
run — and a resumed run — sees the same augmented batches for the same seed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

AUGMENT_STREAM = 1  # folded into the seed so augmentation and dropout keys differ


def augmentation_key(seed: int | jax.Array, step: int | jax.Array) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), AUGMENT_STREAM), step)


def augment_windows(
    windows: jax.Array, key: jax.Array, *, jitter_std: float = 0.0, scaling_std: float = 0.0, window_slice: float = 1.0
) -> jax.Array:
    """windows [batch, seq, f] → augmented windows of the same shape and dtype."""
    batch, seq, features = windows.shape
    k_slice, k_scale, k_jitter = jax.random.split(key, 3)
    if window_slice < 1.0:
        kept = max(2, round(window_slice * seq))
        offset = jax.random.randint(k_slice, (batch, 1), 0, seq - kept + 1)
        position = offset + jnp.linspace(0.0, kept - 1, seq)[None, :]  # [batch, seq] fractional rows
        low = jnp.floor(position).astype(jnp.int32)
        high = jnp.minimum(low + 1, seq - 1)
        frac = (position - low)[..., None].astype(windows.dtype)
        take = jax.vmap(lambda w, i: w[i])
        windows = take(windows, low) * (1 - frac) + take(windows, high) * frac
    if scaling_std > 0:
        windows = windows * (1.0 + scaling_std * jax.random.normal(k_scale, (batch, 1, features), windows.dtype))
    if jitter_std > 0:
        windows = windows + jitter_std * jax.random.normal(k_jitter, windows.shape, windows.dtype)
    return windows
