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


def simplex_weights(loss: Callable, members: int) -> tuple[float, ...]:
    """Weights ≥ 0 summing to one minimising `loss(weights)`, parametrised as softmax(θ) from equal weights."""
    import jax

    theta = minimize(lambda t: loss(jax.nn.softmax(t)), np.zeros(members))
    weights = np.exp(theta - theta.max())
    return tuple(float(w) for w in weights / weights.sum())
