"""WeightedEnsemble: one weight per member and head, learned on the members' out-of-sample validation
forecasts, each head on the loss it is scored by — price: MAE of the log return (the leaderboard's MAE
divided by the price level), volatility: MAE of the range, direction: Brier. Softmax-parametrised so the
weights stay a convex combination: the ensemble can never forecast outside its members' span."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cse_models.ensembles.combiners import Combiner, Linear, LinearPool
from cse_models.ensembles.config import EnsembleConfig
from cse_models.ensembles.fitted import FittedEnsemble
from cse_models.ensembles.kinds import register_ensemble
from cse_models.ensembles.optimize import simplex_weights
from cse_models.ensembles.rows import FitRows
from cse_models.ensembles.spaces import COMBINED_HEADS, RETURN_HEAD, fit_interval_scale
from cse_models.heads.registry import HEAD_SPECS


def _return_weights(rows: FitRows, m: int) -> Combiner:
    import jax.numpy as jnp

    returns, true_return = jnp.asarray(rows.stacks.returns), jnp.asarray(rows.true_return)
    return Linear(simplex_weights(lambda w: jnp.abs(true_return - returns @ w).mean(), m))


def _range_weights(rows: FitRows, m: int) -> Combiner:
    import jax.numpy as jnp

    ranges, true_range = jnp.asarray(rows.stacks.log_ranges), jnp.asarray(np.exp(rows.true_log_range))
    return Linear(simplex_weights(lambda w: jnp.abs(true_range - jnp.exp(ranges @ w)).mean(), m))


def _class_weights(rows: FitRows, m: int) -> Combiner:
    import jax.numpy as jnp

    probabilities, onehot = jnp.asarray(rows.stacks.probabilities), jnp.asarray(np.eye(3)[rows.labels])
    return LinearPool(
        simplex_weights(lambda w: ((jnp.einsum("nmk,m->nk", probabilities, w) - onehot) ** 2).sum(axis=1).mean(), m)
    )


# combining space (`spaces.SPACES`) → the weights fit in it, on the loss its heads are scored by
BY_SPACE: dict[str, Callable[[FitRows, int], Combiner]] = {
    "log_return": _return_weights,
    "log": _range_weights,
    "probabilities": _class_weights,
}


@register_ensemble("weighted", "convex weights per head learned on validation forecasts (optax)")
def fit_weighted(cfg: EnsembleConfig, rows: FitRows) -> FittedEnsemble:
    m = len(cfg.members)
    combiners = {head: BY_SPACE[HEAD_SPECS.get(head).space](rows, m) for head in COMBINED_HEADS}
    ret = combiners[RETURN_HEAD].apply(rows.stacks.returns)
    return FittedEnsemble(
        name=cfg.name,
        method="weighted",
        members=cfg.members,
        combiners=combiners,
        interval_scale=fit_interval_scale(ret, rows.true_return, rows.stacks, rows.interval_level),
        info={"rows": rows.size},
    )
