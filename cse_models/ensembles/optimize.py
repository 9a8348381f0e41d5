"""Gradient fitting of an ensemble's few parameters with optax (full batch: a fold has a few thousand
validation windows and at most a handful of members)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

STEPS = 400
LEARNING_RATE = 0.05


def minimize(loss: Callable, init: np.ndarray, *, steps: int = STEPS) -> np.ndarray:
    """Adam on `loss(params)` (a jax function) from `init`; returns the final parameters as numpy."""
    import jax
    import jax.numpy as jnp
    import optax

    optimizer = optax.adam(LEARNING_RATE)
    params = jnp.asarray(init, jnp.float32)

    @jax.jit
    def run(params):
        def step(carry, _):
            params, state = carry
            grads = jax.grad(loss)(params)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
        return params

    return np.asarray(run(params), dtype=np.float64)


# How hard the weights are pulled toward equal: the loss is multiplied by 1 + strength · KL(w ‖ uniform).
# Unpulled, weights fit on one validation segment chase its noise: on the bundled BTCUSDT year the
# five-member ensemble's price skill vs persistence was +0.12 % against the plain mean's +0.31 % (the
# "forecast combination puzzle", Stock & Watson 2004; Smith & Wallis 2009). Pulled with 0.01 it is +0.30 %
# while the volatility weights still move to the clearly better member (range MAE 0.00448 against
# LightGBM's 0.00450 alone and the mean's 0.00465); 0.1 pinned them near equal (0.00458). Scale-free: a
# member's weight grows only while it saves more than strength · KL of the loss.
TOWARD_EQUAL = 0.01


def simplex_weights(loss: Callable, members: int, toward_equal: float = TOWARD_EQUAL) -> tuple[float, ...]:
    """Weights ≥ 0 summing to one minimising `loss(weights)` · (1 + toward_equal · KL(w ‖ uniform)),
    parametrised as softmax(θ) from equal weights."""
    import jax
    import jax.numpy as jnp

    def pulled(theta):
        w = jax.nn.softmax(theta)
        return loss(w) * (1 + toward_equal * jnp.sum(w * jnp.log(w * members + 1e-12)))

    theta = minimize(pulled, np.zeros(members))
    weights = np.exp(theta - theta.max())
    return tuple(float(w) for w in weights / weights.sum())
