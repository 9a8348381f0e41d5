"""What a training run leaves behind, as JSON-friendly data: `TrainedModel` (the `model_<name>` asset's
value and the model directory's `summary.json`).

Kept apart from `training.run` so that reading, storing or describing a trained model never imports JAX:
the Dagster definitions annotate assets with this type and must load without the training stack.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cse_models.heads.calibration import HeadCalibration

SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class TrainedModel:
    """What a training run leaves behind, as JSON-friendly data (the asset's output)."""

    directory: str
    name: str
    config: dict[str, Any]
    parameters: int
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    metrics: dict[str, dict[str, Any]]
    seconds: float
    devices: int
    calibration: dict[str, float] | None = None  # forecast task: the HeadCalibration baked into the graph

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainedModel:
        return cls(**json.loads(text))

    def save(self) -> None:
        (Path(self.directory) / SUMMARY_FILE).write_text(self.to_json())

    @classmethod
    def load(cls, directory: str | Path) -> TrainedModel:
        return cls.from_json((Path(directory) / SUMMARY_FILE).read_text())

    def head_calibration(self) -> HeadCalibration | None:
        if self.calibration is None:
            return None
        return HeadCalibration(**{**self.calibration, "class_prior": tuple(self.calibration["class_prior"])})
