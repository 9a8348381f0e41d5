"""`HeadSpec`: everything the library and serving need to know about one forecast head, as data.

A head is a view of the forecast card the network's shared outputs feed (`CardParts`: the calibrated
return, σ·√h, the trailing range, the raw network outputs). Each field names how one stage treats it:
the graph computes its outputs (`card`), walk-forward reads them back (`from_outputs`) and scores them
against the truth of a segment (`truth`) with a scoring rule and a reference baseline (names in
`scoring.rules.RULES` and `scoring.baselines.BASELINES`: they live in the layers above), an ensemble
combines members in a space (`ensembles.spaces.SPACES`), and serving renders it (`answers.RENDERERS`).
Names, not objects, for the stages above `heads`: the import layers go one way only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cse_models.heads.calibration import HeadCalibration
from cse_models.heads.targets import HeadTargets


@dataclass(frozen=True)
class CardParts:
    """What every head of the forecast graph is computed from, `[B, …]` arrays of the graph's array
    library (`jax.numpy` when exporting): raw network outputs `[B, 5]`, the calibrated log return `[B, 1]`,
    σ·√h and the trailing range scaled to the horizon `[B, 1]`, and the window's last close `[B, 1]`."""

    out: Any
    ret: Any
    sigma: Any
    range_ref: Any
    last_close: Any
    calibration: HeadCalibration
    exp: Callable[[Any], Any]
    softmax: Callable[[Any], Any]  # over the last axis


@dataclass(frozen=True)
class HeadSpec:
    name: str
    outputs: tuple[str, ...]  # the graph outputs, in the order the graph returns them
    shape: tuple[int, ...]  # a walk-forward forecast is `[n, *shape]`
    card: Callable[[CardParts], tuple[Any, ...]]  # the graph's outputs of this head, each `[B, k]`
    from_outputs: Callable[[Mapping[str, np.ndarray]], np.ndarray]  # graph outputs `[n, k]` → `[n, *shape]`
    truth: Callable[[HeadTargets], np.ndarray]  # what a forecast of a segment's windows is scored against
    scoring: str  # the rule in `scoring.rules.RULES`
    reference: str  # the baseline skill and the Diebold–Mariano test compare with
    space: str  # where an ensemble combines its members' forecasts (`ensembles.spaces.SPACES`)
    render: str  # how serving writes it into the forecast card (`cse_serving.answers.RENDERERS`)
