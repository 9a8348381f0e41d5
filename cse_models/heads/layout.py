"""Which heads a task has, how many numbers the network emits for them, and what the graph outputs.

The multi-head `forecast` task: the network emits 5 numbers per window —
  0 `return_z`    next log return divided by the trailing volatility σ·√h (stationary, unit scale),
  1 `range_ratio` log of the next-horizon log(high/low) over its trailing mean (0 = the trailing mean),
  2–4           Sell / Hold / Buy logits (hold band = ± `hold_band_sigmas` · σ·√h),
and the exported graph turns them into the forecast card: each registered head's outputs
(`heads.registry`), in registration order. Every task's heads, inputs and outputs come from its `TaskSpec`
(`heads.tasks`): the seeds' `regression` (the next close level, a price head) and `classification`
(fixed-band Sell/Hold/Buy) are entries there beside `forecast`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from cse_models.errors import ConfigError
from cse_models.heads.registry import HEAD_SPECS, HeadView
from cse_models.heads.scales import RANGE_FEATURE, SIGMA_FEATURE, SIGMA_FLOOR
from cse_models.heads.tasks import INPUT_NAME, LAST_CLOSE_INPUT, TASK_SPECS, task_spec

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


def heads_of_task(task: str) -> tuple[str, ...]:
    """The task's heads (the forecast task's read when called: a head registered later is in)."""
    return task_spec(task).heads()


class _OutputNames(Mapping[str, tuple[str, ...]]):
    """task → the graph's outputs in order, read from its `TaskSpec` on every lookup."""

    def __getitem__(self, task: str) -> tuple[str, ...]:
        if task not in TASK_SPECS:
            raise KeyError(task)
        return TASK_SPECS.get(task).outputs()

    def __iter__(self) -> Iterator[str]:
        return iter(TASK_SPECS.names())

    def __len__(self) -> int:
        return len(TASK_SPECS.names())


HEAD_OUTPUTS: Mapping[str, tuple[str, ...]] = HeadView(lambda spec: spec.outputs)
OUTPUT_NAMES: Mapping[str, tuple[str, ...]] = _OutputNames()
# The product's heads and card as built in (`heads.registry.HEAD_MODULES`): what the classical members'
# graphs and the composed ensembles emit. Code that must see a head registered later calls `heads_of_task`.
HEADS = heads_of_task("forecast")
FORECAST_OUTPUTS = OUTPUT_NAMES["forecast"]


def network_outputs(task: str) -> int:
    return task_spec(task).network_outputs


def require_head_features(task: str, feature_names: Sequence[str], feature_set: str) -> None:
    """A task whose targets or graph read features (the forecast task scales by trailing volatility: σ and
    the mean range) needs them in its feature set."""
    spec = task_spec(task)
    missing = [name for name in spec.required_features if name not in feature_names]
    if missing:
        raise ConfigError(
            f"task {task!r} needs feature(s) {missing} in the feature set; {feature_set!r} has "
            f"{list(feature_names)} (use feature_set={spec.suggested_feature_set!r})"
        )


def input_names(task: str) -> tuple[str, ...]:
    """The graph's inputs. The forecast graph also takes each window's last close: its features are
    level-free, so the price level enters only there."""
    return task_spec(task).graph_inputs


def outputs_by_head(task: str, outputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The graph's outputs (in `OUTPUT_NAMES[task]` order) as walk-forward head forecasts, each head's
    `[n, *HeadSpec.shape]` (price `[n]`, interval `[n, 2]`, volatility `[n]`, direction `[n, 3]`)."""
    named = dict(zip(OUTPUT_NAMES[task], (np.asarray(o, dtype=np.float64) for o in outputs), strict=True))
    return {head: HEAD_SPECS.get(head).from_outputs(named) for head in heads_of_task(task)}
