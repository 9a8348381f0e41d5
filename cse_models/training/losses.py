"""The training loss of each task, by name (`TASK_LOSSES`): what the train step differentiates and early
stopping watches. Scoring's losses for the Diebold–Mariano test are `scoring.dm_test.DM_LOSSES`."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from cse_models.heads.graph import forecast_loss
from cse_models.registry import Registry

Loss = Callable[[jax.Array, jax.Array], jax.Array]
TASK_LOSSES: Registry[Loss] = Registry("loss")
TASK_LOSSES.add("regression", lambda out, y: jnp.mean((out[:, 0] - y) ** 2))
TASK_LOSSES.add("classification", lambda out, y: optax.softmax_cross_entropy_with_integer_labels(out, y).mean())
TASK_LOSSES.add("forecast", forecast_loss)


def per_window_losses(task: str, out: jax.Array, y: jax.Array) -> jax.Array:
    """The registered loss of each window alone: `[B]`."""
    return jax.vmap(lambda o, t: TASK_LOSSES.get(task)(o[None], t[None]))(out, y)
