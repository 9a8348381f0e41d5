"""Model specs: which registered architecture, at which preset, with which overrides — the key that
training, walk-forward evaluation, the gate and publication all use, so what is scored is what ships."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """One trained model: a stable name (asset suffix, leaderboard row), its architecture, preset, overrides."""

    name: str
    architecture: str
    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "architecture": self.architecture, "preset": self.preset, **self.overrides}
