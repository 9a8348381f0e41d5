"""Which heads a task has, how many numbers the network emits for them, and what the graph outputs.

The multi-head `forecast` task: the network emits 5 numbers per window —
  0 `return_z`    next log return divided by the trailing volatility σ·√h (stationary, unit scale),
  1 `range_ratio` log of the next-horizon log(high/low) over its trailing mean (0 = the trailing mean),
  2–4           Sell / Hold / Buy logits (hold band = ± `hold_band_sigmas` · σ·√h),
and the exported graph turns them into the forecast card: each registered head's outputs
(`heads.registry`), in registration order. The seeds' tasks stay: `regression` (the next close level, a
price head) and `classification` (fixed-band Sell/Hold/Buy).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from cse_models.errors import ConfigError
from cse_models.features.windows import CLASS_NAMES
from cse_models.heads.registry import HEAD_SPECS, HeadView
from cse_models.heads.scales import RANGE_FEATURE, SIGMA_FEATURE, SIGMA_FLOOR

__all__ = [
    "FORECAST_OUTPUTS",
    "HEADS",
    "HEAD_OUTPUTS",
    "INPUT_NAME",
    "LAST_CLOSE_INPUT",
    "OUTPUT_NAMES",
    "RANGE_FEATURE",
    "SIGMA_FEATURE",
    "SIGMA_FLOOR",
    "heads_of_task",
    "input_names",
    "network_outputs",
    "outputs_by_head",
    "require_head_features",
]

_SEED_TASK_HEADS = {"regression": ("price",), "classification": ("direction",)}
_SEED_TASK_OUTPUTS = {"regression": ("close",), "classification": ("probabilities",)}
_NETWORK_OUTPUTS = {"regression": 1, "classification": len(CLASS_NAMES), "forecast": 2 + len(CLASS_NAMES)}
TASKS = ("regression", "classification", "forecast")


def heads_of_task(task: str) -> tuple[str, ...]:
    """The forecast task has every registered head (read when called: a head registered later is in)."""
    if task == "forecast":
        return HEAD_SPECS.names()
    try:
        return _SEED_TASK_HEADS[task]
    except KeyError:
        raise ConfigError(f"task must be one of {sorted(TASKS)}, got {task!r}") from None


class _OutputNames(Mapping[str, tuple[str, ...]]):
    """task → the graph's outputs in order; the forecast task's from the registry on every lookup."""

    def __getitem__(self, task: str) -> tuple[str, ...]:
        if task == "forecast":
            return tuple(name for head in HEAD_SPECS.names() for name in HEAD_SPECS.get(head).outputs)
        return _SEED_TASK_OUTPUTS[task]

    def __iter__(self) -> Iterator[str]:
        return iter(TASKS)

    def __len__(self) -> int:
        return len(TASKS)


HEAD_OUTPUTS: Mapping[str, tuple[str, ...]] = HeadView(lambda spec: spec.outputs)
OUTPUT_NAMES: Mapping[str, tuple[str, ...]] = _OutputNames()
# The product's heads and card as built in (`heads.registry.HEAD_MODULES`): what the classical members'
# graphs and the composed ensembles emit. Code that must see a head registered later calls `heads_of_task`.
HEADS = heads_of_task("forecast")
FORECAST_OUTPUTS = OUTPUT_NAMES["forecast"]

INPUT_NAME = "features"
LAST_CLOSE_INPUT = "last_close"


def network_outputs(task: str) -> int:
    heads_of_task(task)
    return _NETWORK_OUTPUTS[task]


def require_head_features(task: str, feature_names: Sequence[str], feature_set: str) -> None:
    """The forecast task scales by trailing volatility: its feature set must carry σ and the mean range."""
    if task != "forecast":
        return
    missing = [name for name in (SIGMA_FEATURE, RANGE_FEATURE) if name not in feature_names]
    if missing:
        raise ConfigError(
            f"task 'forecast' needs feature(s) {missing} in the feature set; {feature_set!r} has "
            f"{list(feature_names)} (use feature_set='stationary')"
        )


def input_names(task: str) -> tuple[str, ...]:
    """The graph's inputs. The forecast graph also takes each window's last close: its features are
    level-free, so the price level enters only there."""
    return (INPUT_NAME, LAST_CLOSE_INPUT) if task == "forecast" else (INPUT_NAME,)


def outputs_by_head(task: str, outputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The graph's outputs (in `OUTPUT_NAMES[task]` order) as walk-forward head forecasts, each head's
    `[n, *HeadSpec.shape]` (price `[n]`, interval `[n, 2]`, volatility `[n]`, direction `[n, 3]`)."""
    named = dict(zip(OUTPUT_NAMES[task], (np.asarray(o, dtype=np.float64) for o in outputs), strict=True))
    return {head: HEAD_SPECS.get(head).from_outputs(named) for head in heads_of_task(task)}
