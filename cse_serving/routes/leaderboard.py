"""The walk-forward leaderboard of every serving version, read from its manifest: per head, the published
model beside the naive baselines, their skill and the gate's verdict, and the ensemble's weights. What the
web page shows as its leaderboard and model card. One of the page's views (`require_reader`).

Where the rows come from: `metrics["leaderboards"][head]` when publication stored the head's whole board
(every forecaster it scored: `{"rows": [{"name", "kind", "skill", "p_value" or dm.p_value_model_better,
"metrics"}], "first_target", "last_target", "n_points"}`, i.e. `Leaderboard.as_dict()` or a subset of it).
Without it the board is the published model (`heads[]`: skill, p-value; `metrics["walk_forward"][head]`: its
metrics) and its reference baseline, whose skill is 0 by definition and whose metric follows from the skill:
skill = 1 − m / m_ref, so m_ref = m / (1 − skill) — exact, since both were computed on the same points.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from litestar import Controller, get

from cse_models.scoring.rules import SCORING
from cse_models.store import HeadVerdict, Manifest
from cse_serving.loaded_model import LoadedModel
from cse_serving.registry import ModelRegistry
from cse_serving.routes.page import PUBLIC_NOTE, READER_SECURITY, reader_responses, require_reader


class BoardRow(msgspec.Struct, kw_only=True):
    """One forecaster on a head's board. `value` is its walk-forward `metric` (the metric skill is
    computed from), `skill` = 1 − value / value of the reference; `p_value` the one-sided Diebold–Mariano
    p that it beats the reference. Nulls: not recorded in the manifest (or not finite)."""

    name: str
    kind: str
    published: bool
    skill: float | None
    p_value: float | None
    metric: str
    value: float | None


class HeadBoard(msgspec.Struct, kw_only=True):
    """One head: the gate's verdict on the published model, and its board, best skill first. `complete`
    is false when the manifest holds only the published model and its reference (no other baselines)."""

    head: str
    reference: str
    publish: bool
    passed: bool
    forced: bool
    reason: str
    complete: bool
    first_target: str | None
    last_target: str | None
    rows: list[BoardRow]


class EnsembleInfo(msgspec.Struct, kw_only=True):
    """The published ensemble (the manifest's `ensemble`): its name on the leaderboards, how it combines its
    members, each head's member weights (head → member → weight; "all" when one set serves every head) and
    why it was published instead of its best member."""

    name: str | None
    method: str | None
    weights: dict[str, dict[str, float]]
    reason: str | None


class SeriesBoard(msgspec.Struct, kw_only=True):
    """A serving version: what the page's picker, leaderboard and model card show. `member_weights` are
    the manifest's members' weights (for a single model 1 for the published one, 0 for the others);
    `ensemble` is null for a single model. `metrics` are the manifest's, less the stored boards `heads` shows."""

    symbol: str
    interval: str
    version: str
    created_at: str
    task: str
    feature_set: str
    seq_len: int
    horizon: int
    selected: str | None
    heads: list[HeadBoard]
    member_weights: dict[str, float]
    ensemble: EnsembleInfo | None
    data_range: list[str] | None
    metrics: dict[str, Any]


class Leaderboards(msgspec.Struct, kw_only=True):
    series: list[SeriesBoard]


def _number(value: Any) -> float | None:
    """A finite number from a manifest value, else None (manifests are JSON: anything may be missing)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _mapping(parent: Any, key: str) -> dict[str, Any]:
    """`parent[key]` when both are JSON objects, else an empty one."""
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _text(parent: dict[str, Any], key: str) -> str | None:
    return str(parent[key]) if parent.get(key) is not None else None


def _stored_rows(board: dict[str, Any], metric: str, selected: str | None) -> list[BoardRow]:
    rows = []
    for row in board.get("rows") or []:
        if not isinstance(row, dict) or "name" not in row:
            continue
        dm, metrics = _mapping(row, "dm"), _mapping(row, "metrics")
        rows.append(
            BoardRow(
                name=str(row["name"]),
                kind=str(row.get("kind", "model")),
                published=row["name"] == selected,
                skill=_number(row.get("skill")),
                p_value=_number(row.get("p_value", dm.get("p_value_model_better"))),
                metric=metric,
                value=_number(metrics.get(metric, row.get(metric))),
            )
        )
    return rows


def _derived_rows(head: HeadVerdict, metrics: dict[str, Any], metric: str, selected: str | None) -> list[BoardRow]:
    """The published model and its reference, from the head's verdict and the model's walk-forward metrics."""
    own = _mapping(_mapping(metrics, "walk_forward"), head.name)
    value, skill = _number(own.get(metric)), _number(head.skill)
    reference = value / (1.0 - skill) if value is not None and skill is not None and skill < 1 else None
    return [
        BoardRow(
            name=selected or "published model",
            kind="model",
            published=True,
            skill=skill,
            p_value=_number(head.p_value),
            metric=metric,
            value=value,
        ),
        BoardRow(
            name=head.reference,
            kind="baseline",
            published=False,
            skill=0.0,
            p_value=None,
            metric=metric,
            value=reference,
        ),
    ]


def head_board(head: HeadVerdict, metrics: dict[str, Any], selected: str | None) -> HeadBoard:
    scoring = SCORING.get(head.name)
    metric = scoring.skill_metric if scoring is not None else "skill"
    board = _mapping(_mapping(metrics, "leaderboards"), head.name)
    stored = _stored_rows(board, metric, selected)
    rows = stored or _derived_rows(head, metrics, metric, selected)
    rows.sort(key=lambda r: -r.skill if r.skill is not None else math.inf)
    info = _mapping(board, "info") or board
    return HeadBoard(
        head=head.name,
        reference=head.reference,
        publish=head.publish,
        passed=head.passed,
        forced=head.forced,
        reason=head.reason,
        complete=bool(stored),
        first_target=_text(info, "first_target"),
        last_target=_text(info, "last_target"),
        rows=rows,
    )


def _data_range(manifest: Manifest, heads: list[HeadBoard]) -> list[str] | None:
    """[first, last] of the data the version learned from when publication recorded it (`metrics.data_range`
    {start, end}), else the span of its walk-forward points."""
    recorded = manifest.metrics.get("data_range")
    if isinstance(recorded, dict) and recorded.get("start") and recorded.get("end"):
        return [str(recorded["start"]), str(recorded["end"])]
    spans = [(h.first_target, h.last_target) for h in heads if h.first_target and h.last_target]
    return [min(a for a, _ in spans), max(b for _, b in spans)] if spans else None


def _weights(raw: Any) -> dict[str, dict[str, float]]:
    """head → member → weight from the manifest's `ensemble.weights`: that nesting, or one flat member →
    weight set (filed under "all"); anything else is left out rather than failing the whole view."""
    if not isinstance(raw, dict) or not raw:
        return {}
    if all(_number(w) is not None for w in raw.values()):
        return {"all": {str(m): float(w) for m, w in raw.items()}}
    return {
        str(head): {str(m): float(w) for m, w in weights.items() if _number(w) is not None}
        for head, weights in raw.items()
        if isinstance(weights, dict)
    }


def ensemble_info(ensemble: dict[str, Any]) -> EnsembleInfo | None:
    if not ensemble:
        return None
    return EnsembleInfo(
        name=_text(ensemble, "name"),
        method=_text(ensemble, "method"),
        weights=_weights(ensemble.get("weights")),
        reason=_text(ensemble, "reason"),
    )


def series_board(model: LoadedModel) -> SeriesBoard:
    manifest = model.manifest
    metrics = manifest.metrics
    selected = metrics.get("selected") if isinstance(metrics.get("selected"), str) else None
    heads = [head_board(head, metrics, selected) for head in manifest.heads]
    return SeriesBoard(
        symbol=manifest.symbol,
        interval=manifest.interval,
        version=manifest.version,
        created_at=manifest.created_at,
        task=manifest.task,
        feature_set=manifest.feature_set,
        seq_len=manifest.seq_len,
        horizon=manifest.horizon,
        selected=selected,
        heads=heads,
        member_weights={m.name: m.weight for m in manifest.members},
        ensemble=ensemble_info(manifest.ensemble),
        data_range=_data_range(manifest, heads),
        metrics={k: v for k, v in metrics.items() if k != "leaderboards"},  # those are `heads`
    )


class LeaderboardController(Controller):
    tags = ("models",)
    guards = (require_reader,)
    security = READER_SECURITY

    @get(
        "/leaderboard",
        operation_id="leaderboards",
        summary="Walk-forward leaderboards of the serving versions",
        description=(
            "Per serving series (sorted by symbol, interval): its version, training date and data range, and per "
            "head the published model beside the naive baselines with walk-forward skill (1 − error / error of "
            "the head's reference baseline), Diebold–Mariano p-value and the gate's verdict; the members' weights "
            "and, for an ensemble, its method and per-head weights. A series that serves no version is not "
            "listed (GET /models says why)." + PUBLIC_NOTE
        ),
        responses=reader_responses(),
        sync_to_thread=False,
    )
    def leaderboards(self, registry: ModelRegistry) -> Leaderboards:
        return Leaderboards(series=[series_board(model) for _, model in sorted(registry.models().items())])
