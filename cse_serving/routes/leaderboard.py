"""The walk-forward leaderboard of every serving version, read from its manifest: per head, the published
model beside the naive baselines, their skill and the gate's verdict, and the ensemble's weights. What the
web page shows as its leaderboard and model card. One of the page's views (`require_reader`).

Where the rows come from: the manifest's `metrics.leaderboards[head]` (a typed `BoardSummary`: every
forecaster publication scored) when it was stored. Without it the board is the published model (`heads[]`:
skill, p-value; `metrics.walk_forward[head]`: its metrics) and its reference baseline, whose skill is 0 by
definition and whose metric follows from the skill: skill = 1 − m / m_ref, so m_ref = m / (1 − skill) —
exact, since both were computed on the same points.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from litestar import Controller, get

from cse_models.scoring.rules import SCORING
from cse_models.store import BoardSummary, EnsembleEntry, HeadVerdict, Manifest, Metrics
from cse_serving.loaded_model import LoadedModel
from cse_serving.model_registry import ModelRegistry
from cse_serving.routes.page import PUBLIC_NOTE, READER_SECURITY, reader_responses, require_reader
from cse_serving.schemas import finite_or_null


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


class ServedLeaderboards(msgspec.Struct, kw_only=True):
    """The walk-forward leaderboards of every serving version (`cse_models.evaluation.Leaderboards` is one
    walk-forward run's boards, head by head)."""

    series: list[SeriesBoard]


def _stored_rows(board: BoardSummary, metric: str, selected: str | None) -> list[BoardRow]:
    return [
        BoardRow(
            name=row.name,
            kind=row.kind,
            published=row.name == selected,
            skill=finite_or_null(row.skill),
            p_value=finite_or_null(row.p_value),
            metric=metric,
            value=_metric_value(row.metrics.get(metric)),
        )
        for row in board.rows
    ]


def _metric_value(value: Any) -> float | None:
    """A board's metric: a finite number, else None (a row may not have scored this metric)."""
    return finite_or_null(float(value)) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _derived_rows(head: HeadVerdict, metrics: Metrics, metric: str, selected: str | None) -> list[BoardRow]:
    """The published model and its reference, from the head's verdict and the model's walk-forward metrics."""
    own = (metrics.walk_forward or {}).get(head.name, {})
    value, skill = _metric_value(own.get(metric)), finite_or_null(head.skill)
    reference = value / (1.0 - skill) if value is not None and skill is not None and skill < 1 else None
    return [
        BoardRow(
            name=selected or "published model",
            kind="model",
            published=True,
            skill=skill,
            p_value=finite_or_null(head.p_value),
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


def head_board(head: HeadVerdict, metrics: Metrics, selected: str | None) -> HeadBoard:
    scoring = SCORING.get(head.name)
    metric = scoring.skill_metric if scoring is not None else "skill"
    board = (metrics.leaderboards or {}).get(head.name)
    stored = _stored_rows(board, metric, selected) if board is not None else []
    rows = stored or _derived_rows(head, metrics, metric, selected)
    rows.sort(key=lambda r: -r.skill if r.skill is not None else math.inf)
    return HeadBoard(
        head=head.name,
        reference=head.reference,
        publish=head.publish,
        passed=head.passed,
        forced=head.forced,
        reason=head.reason,
        complete=bool(stored),
        first_target=board.first_target if board is not None else None,
        last_target=board.last_target if board is not None else None,
        rows=rows,
    )


def _data_range(manifest: Manifest, heads: list[HeadBoard]) -> list[str] | None:
    """[first, last] of the data the version learned from when publication recorded it (`metrics.data_range`),
    else the span of its walk-forward points."""
    recorded = manifest.metrics.data_range
    if recorded is not None:
        return [recorded.start, recorded.end]
    spans = [(h.first_target, h.last_target) for h in heads if h.first_target and h.last_target]
    return [min(a for a, _ in spans), max(b for _, b in spans)] if spans else None


def ensemble_info(ensemble: EnsembleEntry | None) -> EnsembleInfo | None:
    if ensemble is None:
        return None
    return EnsembleInfo(name=ensemble.name, method=ensemble.method, weights=ensemble.weights, reason=ensemble.reason)


def series_board(model: LoadedModel) -> SeriesBoard:
    manifest = model.manifest
    metrics = manifest.metrics
    heads = [head_board(head, metrics, metrics.selected) for head in manifest.heads]
    recorded = metrics.to_dict()
    return SeriesBoard(
        symbol=manifest.symbol,
        interval=manifest.interval,
        version=manifest.version,
        created_at=manifest.created_at,
        task=manifest.task,
        feature_set=manifest.feature_set,
        seq_len=manifest.seq_len,
        horizon=manifest.horizon,
        selected=metrics.selected,
        heads=heads,
        member_weights={m.name: m.weight for m in manifest.members},
        ensemble=ensemble_info(manifest.ensemble),
        data_range=_data_range(manifest, heads),
        metrics={k: v for k, v in recorded.items() if k != "leaderboards"},  # those are `heads`
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
    def leaderboards(self, registry: ModelRegistry) -> ServedLeaderboards:
        return ServedLeaderboards(series=[series_board(model) for _, model in sorted(registry.models().items())])
