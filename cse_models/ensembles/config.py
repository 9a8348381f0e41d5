"""`EnsembleConfig`: which members, combined how — the seed's `EnsembleConfig(models=[...], method=...)`,
with members named as the model specs they are (leaderboard rows, `onnx_<name>` assets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cse_models.errors import ConfigError


@dataclass(frozen=True)
class EnsembleConfig:
    """`name` is the ensemble's leaderboard row; `method` a registered ensemble kind (`ENSEMBLES`:
    weighted, stacking, voting); `options` that kind's own settings (e.g. voting's `vote`, `average`)."""

    name: str
    members: tuple[str, ...]
    method: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise ConfigError(f"ensemble {self.name!r} needs at least 2 members, got {list(self.members)}")
        if len(set(self.members)) != len(self.members):
            raise ConfigError(f"ensemble {self.name!r} lists a member twice: {list(self.members)}")
        if self.name in self.members:
            raise ConfigError(f"ensemble {self.name!r} cannot be its own member")


ENSEMBLE_METHODS = ("weighted", "stacking", "voting")


def default_ensembles(members: tuple[str, ...]) -> tuple[EnsembleConfig, ...]:
    """One ensemble per method over every member (`ensemble_<method>` rows on the leaderboards); none for
    fewer than two members. The graph publishes the one with the best walk-forward price skill."""
    if len(members) < 2:
        return ()
    return tuple(EnsembleConfig(f"ensemble_{method}", members, method) for method in ENSEMBLE_METHODS)
