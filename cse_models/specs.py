"""Model specs: which registered architecture, at which preset, with which overrides — the key that
training, walk-forward evaluation, the gate and publication all use, so what is scored is what ships."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cse_models.errors import ConfigError

PRESETS = ("default", "demo")


@dataclass(frozen=True)
class ModelSpec:
    """One trained model: a stable name (asset suffix, leaderboard row), its architecture, preset, overrides."""

    name: str
    architecture: str
    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "architecture": self.architecture, "preset": self.preset, **self.overrides}


def preset_config(architecture: str, config_cls: type, preset: str, values: dict[str, Any]) -> Any:
    """A registered architecture's config at `preset` — its defaults, or its small `demo()` preset — with
    `values` (what the data dictates, then the spec's overrides) set. Flax networks and classical members
    alike: an unknown field or preset fails naming the known ones."""
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(values) - fields
    if unknown:
        raise ConfigError(f"model {architecture!r} has no config field(s) {sorted(unknown)}; fields: {sorted(fields)}")
    if preset not in PRESETS:
        raise ConfigError(f"model preset must be 'default' or 'demo', got {preset!r}")
    return config_cls.demo(**values) if preset == "demo" else config_cls(**values)
