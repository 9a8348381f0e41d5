"""The model registry: architectures by stable name, each with its frozen config class.

`build_model("lstm_regressor", cfg, rngs=...)` is the only way training, export and the assets
construct a model, so the zoo grows by registering, never by editing an if-chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
from flax import nnx

from cse_models.errors import ConfigError
from cse_models.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config_cls: type
    build: Callable[..., nnx.Module]
    family: str
    description: str = ""


MODELS: Registry[ModelEntry] = Registry("model")

# What a trained model is made of: parameters and running statistics (BatchNorm), not RNG streams.
MODEL_STATE = nnx.Any(nnx.Param, nnx.BatchStat)


def register_model(name: str, config_cls: type, *, family: str, description: str = ""):
    """Class decorator: `@register_model("lstm_regressor", LSTMConfig, family="rnn")`."""

    def add(cls):
        MODELS.add(name, ModelEntry(name, config_cls, cls, family, description or (cls.__doc__ or "").strip()))
        return cls

    return add


def build_model(name: str, cfg: Any | None = None, *, rngs: nnx.Rngs, **overrides: Any) -> nnx.Module:
    """Build a registered model; `cfg` defaults to the config class's defaults (+ overrides)."""
    entry = MODELS.get(name)
    if cfg is None:
        cfg = entry.config_cls(**overrides)
    elif overrides:
        raise ConfigError("pass either a config or field overrides, not both")
    if not isinstance(cfg, entry.config_cls):
        raise ConfigError(f"model {name!r} takes a {entry.config_cls.__name__}, got {type(cfg).__name__}")
    return entry.build(cfg, rngs=rngs)


def parameter_count(model: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
