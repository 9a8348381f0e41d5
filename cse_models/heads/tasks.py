"""The tasks a network can learn, as data: one `TaskSpec` per task in `TASK_SPECS`, so no stage asks for a
task by name in an if-chain; each reads the spec's fields, or its own small registry keyed by task name.

`forecast` is the product (every registered head, from 5 shared network outputs); `regression` (the next
close as a level, a price head) and `classification` (fixed-band Sell/Hold/Buy, a direction head) are the
seeds' tasks, kept for parity with them (`DataConfig.seed()`, the benchmarks, the seed-task tests).

Adding a task is a `TaskSpec` here, its name in `config.TASKS` (the config layer sits below heads and
validates the name), and one entry in each registry keyed by task name:
  - `datasets.segments.TASK_TARGETS` — the training target of a segment's windows,
  - `scoring.segment.TASK_TRUTHS` — what each of its heads is scored against,
  - `heads.graph.SERVING_FUNCTIONS` — the exported function of the graph's inputs,
  - `training.losses.TASK_LOSSES` — the loss training differentiates,
  - `cse_serving.answers` decoders — how serving turns the graph's outputs into an answer.
The other stages interpret fields: `calibrated` (training calibrates the heads, export needs it), `card`
(classical members, ensembles and the asset's chart need the forecast card), `hold_band` (the `last_move`
baseline and serving's live Hold band: `scoring.baselines.LAST_MOVE_BANDS`, `cse_serving.live.HOLD_BANDS`),
`target_needs_scaler` (the leakage guard), `class_names` (the manifest), `graph_inputs`
(`datasets.graph_inputs.INPUT_BUILDERS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cse_models.errors import ConfigError
from cse_models.features.windows import CLASS_NAMES
from cse_models.heads.registry import HEAD_SPECS
from cse_models.heads.scales import RANGE_FEATURE, SIGMA_FEATURE
from cse_models.registry import Registry

INPUT_NAME = "features"
LAST_CLOSE_INPUT = "last_close"


@dataclass(frozen=True)
class TaskSpec:
    """One task: what its network emits, what its graph takes and returns, and how the stages treat it.

    `heads` and `outputs` are functions so that the forecast task reads the head registry when asked
    (a head registered later is in)."""

    name: str
    network_outputs: int  # numbers the network emits per window
    heads: Callable[[], tuple[str, ...]]  # its heads, in card order
    outputs: Callable[[], tuple[str, ...]]  # the graph's outputs, in order
    graph_inputs: tuple[str, ...]  # the graph's inputs, in order
    class_names: tuple[str, ...]  # the manifest's class names (empty: no classes)
    required_features: tuple[str, ...] = ()  # features its targets and graph read (checked up front)
    suggested_feature_set: str | None = None  # the set that carries them (named in the error)
    calibrated: bool = False  # training calibrates its heads on validation; export needs the calibration
    card: bool = False  # the graph emits the forecast card (what classical members learn, ensembles combine)
    hold_band: str | None = None  # how its Hold class is bounded: "sigmas" (± k·σ·√h), "fixed" (± a return)
    target_needs_scaler: bool = False  # its training target is a scaled feature: known once the scaler is fit


def _card_outputs() -> tuple[str, ...]:
    return tuple(name for head in HEAD_SPECS.names() for name in HEAD_SPECS.get(head).outputs)


TASK_SPECS: Registry[TaskSpec] = Registry("task")
for _spec in (
    TaskSpec(
        name="forecast",
        network_outputs=2 + len(CLASS_NAMES),  # return_z, range_ratio, Sell/Hold/Buy logits
        heads=HEAD_SPECS.names,
        outputs=_card_outputs,
        graph_inputs=(INPUT_NAME, LAST_CLOSE_INPUT),  # level-free features: the level enters as last_close
        class_names=CLASS_NAMES,
        required_features=(SIGMA_FEATURE, RANGE_FEATURE),
        suggested_feature_set="stationary",
        calibrated=True,
        card=True,
        hold_band="sigmas",
    ),
    TaskSpec(
        name="regression",
        network_outputs=1,
        heads=lambda: ("price",),
        outputs=lambda: ("close",),
        graph_inputs=(INPUT_NAME,),
        class_names=(),
        hold_band="fixed",  # its `last_move` direction baseline reads the fixed band
        target_needs_scaler=True,
    ),
    TaskSpec(
        name="classification",
        network_outputs=len(CLASS_NAMES),
        heads=lambda: ("direction",),
        outputs=lambda: ("probabilities",),
        graph_inputs=(INPUT_NAME,),
        class_names=CLASS_NAMES,
        hold_band="fixed",
    ),
):
    TASK_SPECS.add(_spec.name, _spec)


def task_spec(task: str) -> TaskSpec:
    """The task's spec; an unknown task is a configuration error naming the known ones."""
    if task not in TASK_SPECS:
        raise ConfigError(f"task must be one of {TASK_SPECS.names()}, got {task!r}")
    return TASK_SPECS.get(task)


def card_tasks() -> tuple[str, ...]:
    """The tasks whose graph emits the forecast card."""
    return tuple(name for name in TASK_SPECS if TASK_SPECS.get(name).card)
