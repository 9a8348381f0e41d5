"""Which models the product trains: named spec sets, as data — the Dagster graph's set is chosen once, when
the definitions load (`CseSettings.model_set`, from `CSE_MODEL_SET`), and `cse-models evaluate` takes the
same sets (`--model-set`, default "demo"), so the CLI's first leaderboard is of the models the demo publishes.

Each `ModelSpec` (cse_models.specs) becomes a `model_<name>` / `onnx_<name>` asset pair
(cse_assets/assets/models.py) and a row of the walk-forward leaderboards, keyed by its name, so what the
evaluation scores is exactly what publication ships.
- "demo" (default): the multi-head LSTM and LightGBM (small presets) — what `make demo` and `cse_hourly`
  train: a network and a classical member, the smallest ensemble worth weighing (LightGBM fits in seconds).
- "zoo": every registered architecture, Flax and classical, at its small `demo()` preset (`make zoo`).
- "full": every registered architecture at its default sizes (the seed's, for the networks).

The architecture names are written out instead of read from `cse_models.models.MODELS` and
`cse_models.classical.CLASSICAL`: the first is filled by importing the Flax modules, i.e. JAX, and every
Dagster process (webserver, daemon, each run) loads these definitions.
`test_every_registered_architecture_is_in_the_zoo` keeps the names and the registries equal.
"""

from __future__ import annotations

from cse_models.registry import Registry
from cse_models.specs import ModelSpec

ARCHITECTURES: tuple[str, ...] = (
    "attention_cnn1d",
    "bidirectional_lstm",
    "conv_lstm",
    "financial_cnn1d",
    "financial_cnn2d",
    "financial_gru",
    "financial_lstm",
    "financial_transformer",
    "lstm_regressor",
    "residual_cnn1d",
    "stacked_lstm",
    "transformer_decoder",
    "transformer_encoder",
    "transformer_with_attention",
    "transformer_with_cnn",
)
CLASSICAL_ARCHITECTURES: tuple[str, ...] = ("lightgbm", "random_forest")


def _asset_name(architecture: str) -> str:
    return architecture.removesuffix("_regressor")


MODEL_SETS: Registry[tuple[ModelSpec, ...]] = Registry("model set")
MODEL_SETS.add(
    "demo", (ModelSpec("lstm", "lstm_regressor", preset="demo"), ModelSpec("lightgbm", "lightgbm", preset="demo"))
)
MODEL_SETS.add(
    "zoo", tuple(ModelSpec(_asset_name(a), a, preset="demo") for a in (*ARCHITECTURES, *CLASSICAL_ARCHITECTURES))
)
MODEL_SETS.add("full", tuple(ModelSpec(_asset_name(a), a) for a in (*ARCHITECTURES, *CLASSICAL_ARCHITECTURES)))

__all__ = ["ARCHITECTURES", "CLASSICAL_ARCHITECTURES", "MODEL_SETS", "ModelSpec"]
