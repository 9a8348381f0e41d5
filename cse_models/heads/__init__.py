"""Forecast heads: what a model predicts, how its targets are built, and how its raw outputs become the
forecast card. One module for every architecture: a network of any family emits `network_outputs(task)`
numbers per window, and everything else — targets, loss, calibration, the graph's outputs — lives here.

Each head is one registry entry (`registry.HEAD_MODULES`, one file per head exposing a `HeadSpec`):
adding a head is its file and one line there. numpy only at this level (`targets`, `calibration`,
`layout`, `registry`); the JAX side (`graph`) is imported where a model trains or exports, so serving
and evaluation stay light.
"""

from cse_models.heads.calibration import HeadCalibration, conformal_halfwidth, fit_shrink
from cse_models.heads.layout import (
    FORECAST_OUTPUTS,
    HEAD_OUTPUTS,
    HEADS,
    RANGE_FEATURE,
    SIGMA_FEATURE,
    heads_of_task,
    network_outputs,
    require_head_features,
)
from cse_models.heads.registry import HEAD_SPECS, registered_head
from cse_models.heads.spec import HeadSpec
from cse_models.heads.targets import HeadTargets, forecast_targets, head_targets

__all__ = [
    "FORECAST_OUTPUTS",
    "HEADS",
    "HEAD_OUTPUTS",
    "HEAD_SPECS",
    "RANGE_FEATURE",
    "SIGMA_FEATURE",
    "HeadCalibration",
    "HeadSpec",
    "HeadTargets",
    "conformal_halfwidth",
    "fit_shrink",
    "forecast_targets",
    "head_targets",
    "heads_of_task",
    "network_outputs",
    "registered_head",
    "require_head_features",
]
