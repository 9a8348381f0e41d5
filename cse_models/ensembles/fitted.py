"""`FittedEnsemble`: what an ensemble learned — one combiner per head and the interval's conformal factor —
as JSON-friendly data (the `ensemble_weights` asset's value, the manifest's `ensemble`), and `combine`,
the numpy computation the composed ONNX graph is checked against (each combined head's combiner on its
space's stack, `spaces.SPACES`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cse_models.ensembles.combiners import (
    Combiner,
    Linear,
    LinearPool,
    check_weights,
    combiner_from_dict,
    combiner_to_dict,
)
from cse_models.ensembles.spaces import COMBINED_HEADS, Forecasts, card_from, stack_forecasts
from cse_models.errors import ConfigError


@dataclass(frozen=True)
class FittedEnsemble:
    name: str
    method: str
    members: tuple[str, ...]
    combiners: dict[str, Combiner]  # head in COMBINED_HEADS → combiner
    interval_scale: float
    info: dict[str, Any] = field(default_factory=dict)  # how it was fit: rows, folds, options

    def __post_init__(self) -> None:
        if set(self.combiners) != set(COMBINED_HEADS):
            raise ConfigError(
                f"ensemble {self.name!r} needs combiners for {COMBINED_HEADS}, got {sorted(self.combiners)}"
            )
        for head, combiner in self.combiners.items():
            size = len(getattr(combiner, "weights", ())) or getattr(combiner, "members", 0)
            if size and size != len(self.members):
                raise ConfigError(
                    f"ensemble {self.name!r}: the {head} combiner has {size} weights for {len(self.members)} members"
                )
            if self.method == "weighted" and isinstance(combiner, Linear | LinearPool):
                check_weights(combiner.weights, f"ensemble {self.name!r} {head}")
        if not np.isfinite(self.interval_scale) or self.interval_scale <= 0:
            raise ConfigError(f"ensemble {self.name!r}: interval_scale must be > 0, got {self.interval_scale}")

    def combine(self, forecasts: Mapping[str, Forecasts], last_close: np.ndarray) -> dict[str, np.ndarray]:
        """Members' head forecasts (walk-forward form) → the ensemble's."""
        stacks = stack_forecasts(forecasts, self.members, last_close)
        combined = {head: self.combiners[head].apply(stacks.of(head)) for head in COMBINED_HEADS}
        return card_from(combined, stacks, self.interval_scale, last_close)

    def weights(self) -> dict[str, dict[str, float]]:
        """head → member → weight, for combiners that have per-member weights (tables, the web page)."""
        return {
            head: dict(zip(self.members, map(float, c.weights), strict=True))
            for head, c in self.combiners.items()
            if hasattr(c, "weights")
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "members": list(self.members),
            "combiners": {head: combiner_to_dict(c) for head, c in self.combiners.items()},
            "interval_scale": self.interval_scale,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FittedEnsemble:
        """Validates on the way in: weights of a weighted ensemble that no longer sum to one are refused."""
        try:
            return cls(
                name=data["name"],
                method=data["method"],
                members=tuple(data["members"]),
                combiners={head: combiner_from_dict(c) for head, c in data["combiners"].items()},
                interval_scale=float(data["interval_scale"]),
                info=dict(data.get("info", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"not a fitted ensemble: {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FittedEnsemble:
        return cls.from_dict(json.loads(text))
