"""Which models the graph trains: named spec sets, chosen by `CSE_MODEL_SET` when definitions load.

Each `ModelSpec` becomes a `model_<name>` / `onnx_<name>` asset pair (cse_assets/assets/models.py).
- "demo" (default): the Make Us Rich LSTM at its real size — what `make demo` trains and publishes.
- "zoo": every registered architecture at its small `demo()` preset (`make zoo`).
- "full": every registered architecture at the seed's default sizes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cse_models.models import MODELS
from cse_models.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """One trained model in the graph: asset suffix, registered architecture, config preset and overrides."""

    name: str
    architecture: str
    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)


def _asset_name(architecture: str) -> str:
    return architecture.removesuffix("_regressor")


MODEL_SETS: Registry[list[ModelSpec]] = Registry("model set")
MODEL_SETS.add("demo", [ModelSpec("lstm", "lstm_regressor")])
MODEL_SETS.add("zoo", [ModelSpec(_asset_name(a), a, preset="demo") for a in MODELS.names()])
MODEL_SETS.add("full", [ModelSpec(_asset_name(a), a) for a in MODELS.names()])


def selected_specs() -> list[ModelSpec]:
    return MODEL_SETS.get(os.environ.get("CSE_MODEL_SET", "demo"))
