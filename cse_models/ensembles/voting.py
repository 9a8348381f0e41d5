"""VotingEnsemble: nothing learned but the interval's conformal factor. Direction by soft voting (the
mean of the members' probabilities) or hard voting (the share of members whose top class each class
is); price and volatility by the members' mean or median (the median shrugs off one member gone wild)."""

from __future__ import annotations

from cse_models.ensembles.combiners import HardVote, Linear, LinearPool, Median
from cse_models.ensembles.config import EnsembleConfig
from cse_models.ensembles.fitted import FittedEnsemble
from cse_models.ensembles.kinds import register_ensemble
from cse_models.ensembles.rows import FitRows
from cse_models.ensembles.spaces import COMBINED_HEADS, RETURN_HEAD, fit_interval_scale
from cse_models.errors import ConfigError
from cse_models.heads.registry import HEAD_SPECS

VOTES = ("soft", "hard")
AVERAGES = ("mean", "median")


@register_ensemble("voting", "soft or hard votes for direction, mean or median for price and volatility")
def fit_voting(cfg: EnsembleConfig, rows: FitRows) -> FittedEnsemble:
    vote, average = cfg.options.get("vote", "soft"), cfg.options.get("average", "mean")
    if vote not in VOTES or average not in AVERAGES:
        raise ConfigError(f"voting options: vote in {VOTES}, average in {AVERAGES}; got {vote!r}, {average!r}")
    m = len(cfg.members)
    equal = tuple([1.0 / m] * m)
    level = Median(m) if average == "median" else Linear(equal)
    direction = HardVote(3) if vote == "hard" else LinearPool(equal)
    by_space = {"log_return": level, "log": level, "probabilities": direction}  # `spaces.SPACES` → combiner
    combiners = {head: by_space[HEAD_SPECS.get(head).space] for head in COMBINED_HEADS}
    ret = combiners[RETURN_HEAD].apply(rows.stacks.returns)
    return FittedEnsemble(
        name=cfg.name,
        method="voting",
        members=cfg.members,
        combiners=combiners,
        interval_scale=fit_interval_scale(ret, rows.true_return, rows.stacks, rows.interval_level),
        info={"rows": rows.size, "vote": vote, "average": average},
    )
