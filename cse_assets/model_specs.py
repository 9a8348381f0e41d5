"""Which models the graph trains: named spec sets, chosen by `CSE_MODEL_SET` when definitions load.

Each `ModelSpec` (cse_models.specs) becomes a `model_<name>` / `onnx_<name>` asset pair
(cse_assets/assets/models.py) and a row of the walk-forward leaderboards, keyed by its name, so what the
evaluation scores is exactly what publication ships.
- "demo" (default): the multi-head LSTM (small preset) — what `make demo` and `cse_hourly` train.
- "zoo": every registered architecture at its small `demo()` preset (`make zoo`).
- "full": every registered architecture at the seed's default sizes.
"""

from __future__ import annotations

import os

from cse_models.models import MODELS
from cse_models.registry import Registry
from cse_models.specs import ModelSpec


def _asset_name(architecture: str) -> str:
    return architecture.removesuffix("_regressor")


MODEL_SETS: Registry[list[ModelSpec]] = Registry("model set")
MODEL_SETS.add("demo", [ModelSpec("lstm", "lstm_regressor", preset="demo")])
MODEL_SETS.add("zoo", [ModelSpec(_asset_name(a), a, preset="demo") for a in MODELS.names()])
MODEL_SETS.add("full", [ModelSpec(_asset_name(a), a) for a in MODELS.names()])


def selected_specs() -> list[ModelSpec]:
    return MODEL_SETS.get(os.environ.get("CSE_MODEL_SET", "demo"))


__all__ = ["MODEL_SETS", "ModelSpec", "selected_specs"]
