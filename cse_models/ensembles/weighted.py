"""WeightedEnsemble: one weight per member and head, learned on the members' out-of-sample validation
forecasts, each head on the loss it is scored by — price: MAE of the log return (the leaderboard's MAE
divided by the price level), volatility: MAE of the range, direction: Brier. Softmax-parametrised so the
weights stay a convex combination: the ensemble can never forecast outside its members' span."""

from __future__ import annotations

import numpy as np

from cse_models.ensembles.combiners import Linear, LinearPool
from cse_models.ensembles.config import EnsembleConfig
from cse_models.ensembles.fitted import FittedEnsemble
from cse_models.ensembles.kinds import register_ensemble
from cse_models.ensembles.optimize import simplex_weights
from cse_models.ensembles.rows import FitRows
from cse_models.ensembles.spaces import fit_interval_scale


@register_ensemble("weighted", "convex weights per head learned on validation forecasts (optax)")
def fit_weighted(cfg: EnsembleConfig, rows: FitRows) -> FittedEnsemble:
    import jax.numpy as jnp

    s = rows.stacks
    m = len(cfg.members)
    returns, true_return = jnp.asarray(s.returns), jnp.asarray(rows.true_return)
    ranges, true_range = jnp.asarray(s.log_ranges), jnp.asarray(np.exp(rows.true_log_range))
    probabilities, onehot = jnp.asarray(s.probabilities), jnp.asarray(np.eye(3)[rows.labels])
    price = Linear(simplex_weights(lambda w: jnp.abs(true_return - returns @ w).mean(), m))
    volatility = Linear(simplex_weights(lambda w: jnp.abs(true_range - jnp.exp(ranges @ w)).mean(), m))
    direction = LinearPool(
        simplex_weights(lambda w: ((jnp.einsum("nmk,m->nk", probabilities, w) - onehot) ** 2).sum(axis=1).mean(), m)
    )
    ret = price.apply(s.returns)
    return FittedEnsemble(
        name=cfg.name,
        method="weighted",
        members=cfg.members,
        combiners={"price": price, "volatility": volatility, "direction": direction},
        interval_scale=fit_interval_scale(ret, rows.true_return, s, rows.interval_level),
        info={"rows": rows.size},
    )
