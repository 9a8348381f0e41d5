"""How one output row of a model becomes its answer, per manifest task.

A row is one batch row of every graph output, by output name (`OUTPUT_NAMES[task]` of
`cse_models.heads.layout`). Each task registers a decoder factory: it reads what it needs from the
manifest once, at load time (and raises StoreError for a manifest it cannot serve), and returns the
function called per request. A decoder returns the legacy `Prediction` and, for the multi-head
`forecast` task, the forecast card.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from cse_models.errors import StoreError
from cse_models.heads.layout import HEAD_OUTPUTS
from cse_models.store import Manifest
from cse_serving.schemas import ForecastCard, ForecastDirection, ForecastInterval, Prediction

Row = Mapping[str, np.ndarray]
"""One batch row per graph output: name → 1-D array (`[1]`, or `[n_classes]` for probabilities)."""

Answer = tuple[Prediction, ForecastCard | None]
Decoder = Callable[[Row, float], Answer]
"""(row, last close of the request) → answer."""

DEFAULT_INTERVAL_LEVEL = 0.8


def _direction(class_names: list[str], probabilities: np.ndarray) -> ForecastDirection:
    values = probabilities.astype(np.float64)
    best = int(values.argmax())
    return ForecastDirection(
        label=class_names[best],
        confidence=float(values[best]),
        probabilities=dict(zip(class_names, values.tolist(), strict=True)),
    )


def regression_decoder(manifest: Manifest) -> Decoder:
    def decode(row: Row, last_close: float) -> Answer:
        return Prediction(close=float(row["close"][0])), None

    return decode


def classification_decoder(manifest: Manifest) -> Decoder:
    if not manifest.class_names:
        raise StoreError("a classification model needs class_names")
    class_names = list(manifest.class_names)

    def decode(row: Row, last_close: float) -> Answer:
        d = _direction(class_names, row["probabilities"])
        return Prediction(label=d.label, confidence=d.confidence, probabilities=d.probabilities), None

    return decode


def published_heads(manifest: Manifest) -> frozenset[str]:
    """Names of the heads whose verdict is `publish`; StoreError for a head serving does not know or
    whose outputs differ from the contract's (`HEAD_OUTPUTS`)."""
    for head in manifest.heads:
        if head.name not in HEAD_OUTPUTS:
            raise StoreError(f"head {head.name!r} is not one of {sorted(HEAD_OUTPUTS)}")
        if tuple(head.outputs) != HEAD_OUTPUTS[head.name]:
            raise StoreError(
                f"head {head.name!r} lists outputs {head.outputs}, expected {list(HEAD_OUTPUTS[head.name])}"
            )
    return frozenset(head.name for head in manifest.heads if head.publish)


def interval_level(metrics: Mapping[str, Any]) -> float:
    """The interval head's coverage level, recorded by calibration (`metrics.calibration.interval_level`)."""
    calibration = metrics.get("calibration") or {}
    level = calibration.get("interval_level", DEFAULT_INTERVAL_LEVEL) if isinstance(calibration, dict) else None
    if not isinstance(level, int | float) or isinstance(level, bool) or not 0 < level < 1:
        raise StoreError(f"metrics.calibration.interval_level must be a number in (0, 1), got {level!r}")
    return float(level)


def forecast_decoder(manifest: Manifest) -> Decoder:
    """The forecast card: only the heads whose verdict is `publish` are answered, the rest are null."""
    if not manifest.class_names:
        raise StoreError("a forecast model needs class_names for its direction head")
    class_names = list(manifest.class_names)
    published = published_heads(manifest)
    level = interval_level(manifest.metrics)
    skill = {head.name: head.skill for head in manifest.heads if head.publish and math.isfinite(head.skill)}

    def decode(row: Row, last_close: float) -> Answer:
        price = "price" in published
        direction = _direction(class_names, row["probabilities"]) if "direction" in published else None
        card = ForecastCard(
            last_close=last_close,
            close=float(row["close"][0]) if price else None,
            log_return=float(row["return"][0]) if price else None,
            interval=(
                ForecastInterval(lower=float(row["lower"][0]), upper=float(row["upper"][0]), level=level)
                if "interval" in published
                else None
            ),
            volatility=float(row["volatility"][0]) if "volatility" in published else None,
            direction=direction,
            skill=skill,
        )
        prediction = Prediction(
            close=card.close,
            label=direction.label if direction else None,
            confidence=direction.confidence if direction else None,
            probabilities=direction.probabilities if direction else None,
        )
        return prediction, card

    return decode


DECODERS: dict[str, Callable[[Manifest], Decoder]] = {
    "regression": regression_decoder,
    "classification": classification_decoder,
    "forecast": forecast_decoder,
}
