"""How one output row of a model becomes its answer, per manifest task.

A row is one batch row of every graph output, by output name (`OUTPUT_NAMES[task]` of
`cse_models.heads.layout`). Each task registers a decoder factory: it reads what it needs from the
manifest once, at load time (and raises StoreError for a manifest it cannot serve), and returns the
function called per request. A decoder returns the legacy `Prediction` and, for the multi-head
`forecast` task, the forecast card: each published head writes its part through the renderer its
`HeadSpec.render` names (`RENDERERS`); a head with no card field of its own uses `values`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cse_models.errors import StoreError
from cse_models.heads.layout import HEAD_OUTPUTS
from cse_models.heads.registry import HEAD_SPECS
from cse_models.registry import Registry
from cse_models.store import Manifest
from cse_serving.schemas import ForecastCard, ForecastDirection, ForecastInterval, Prediction

Row = Mapping[str, np.ndarray]
"""One batch row per graph output: name → 1-D array (`[1]`, or `[n_classes]` for probabilities)."""

Answer = tuple[Prediction, ForecastCard | None]
Decoder = Callable[[Row, float], Answer]
"""(row, last close of the request) → answer."""


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


@dataclass(frozen=True)
class CardContext:
    """What a head's renderer reads besides its row, fixed per loaded model."""

    class_names: list[str]
    level: float


Render = Callable[[str, Row, CardContext], dict[str, Any]]
"""(head, row, context) → the `ForecastCard` fields this head fills."""

RENDERERS: Registry[Render] = Registry("card renderer")
RENDERERS.add("price", lambda _, row, __: {"close": float(row["close"][0]), "log_return": float(row["return"][0])})
RENDERERS.add(
    "interval",
    lambda _, row, ctx: {
        "interval": ForecastInterval(lower=float(row["lower"][0]), upper=float(row["upper"][0]), level=ctx.level)
    },
)
RENDERERS.add("volatility", lambda _, row, __: {"volatility": float(row["volatility"][0])})
RENDERERS.add("direction", lambda _, row, ctx: {"direction": _direction(ctx.class_names, row["probabilities"])})


@RENDERERS.register("values")
def _values(head: str, row: Row, _: CardContext) -> dict[str, Any]:
    """A head without a card field of its own: its outputs' numbers under `other[head]`, output by output."""
    values = [float(v) for output in HEAD_SPECS.get(head).outputs for v in np.ravel(row[output])]
    return {"other": {head: values}}


def render_card(heads: Sequence[str], row: Row, ctx: CardContext) -> dict[str, Any]:
    """The card's fields of the published heads (`HeadSpec.render`), in card order; the others null."""
    fields: dict[str, Any] = {"close": None, "log_return": None, "interval": None, "volatility": None}
    fields |= {"direction": None, "other": {}}
    for head in heads:
        part = RENDERERS.get(HEAD_SPECS.get(head).render)(head, row, ctx)
        fields |= {**part, "other": {**fields["other"], **part.get("other", {})}}
    return fields


def forecast_decoder(manifest: Manifest) -> Decoder:
    """The forecast card: only the heads whose verdict is `publish` are answered, the rest are null."""
    if not manifest.class_names:
        raise StoreError("a forecast model needs class_names for its direction head")
    class_names = list(manifest.class_names)
    published = published_heads(manifest)
    heads = [head for head in HEAD_SPECS.names() if head in published]
    level = manifest.metrics.interval_level
    skill = {head.name: head.skill for head in manifest.heads if head.publish and math.isfinite(head.skill)}
    context = CardContext(class_names, level)

    def decode(row: Row, last_close: float) -> Answer:
        card = ForecastCard(last_close=last_close, skill=skill, **render_card(heads, row, context))
        direction = card.direction
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
