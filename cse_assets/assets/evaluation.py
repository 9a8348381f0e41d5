"""Forecast honesty per symbol: walk-forward leaderboards, one per head, of exactly the model specs the
graph trains and publishes (keyed by spec name) against each head's naive baselines, and the
`beats_naive` gate that blocks publication when no head of any model beats its reference."""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
import json

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    asset_check,
)

from cse_assets.failures import library_errors_as_failure
from cse_assets.io import Codec, register_codec
from cse_assets.model_specs import selected_specs
from cse_assets.partitions import symbols
from cse_assets.resources import DataSettings, EvaluationSettings
from cse_models.evaluation import Leaderboard, Leaderboards, PromotionDecision, evaluate_walk_forward, head_decisions
from cse_models.evaluation.scoring import SCORING

register_codec(
    Leaderboards,
    Codec(
        "leaderboards.json",
        lambda boards, path: path.write_text(boards.to_json()),
        lambda path: Leaderboards.from_dict(json.loads(path.read_text())),
    ),
)


def gate_decisions(boards: Leaderboards, settings: EvaluationSettings) -> dict[str, dict[str, PromotionDecision]]:
    """model name → head → verdict (baselines are never published)."""
    return {
        name: head_decisions(boards, name, settings.max_p_value, force=settings.force_publish)
        for name in boards.models()
    }


def leaderboard_table(board: Leaderboard) -> MetadataValue:
    """One head's leaderboard as a Dagster table: sortable in the UI, unlike Markdown in a modal."""
    metrics = [key for key, _ in SCORING[board.task].columns]
    columns = [
        TableColumn("forecaster", "string"),
        TableColumn("kind", "string"),
        TableColumn("skill", "float", description=f"1 − {SCORING[board.task].skill_metric} / reference's"),
        TableColumn("dm_p_better", "float", description=f"one-sided Diebold–Mariano p vs {board.reference}"),
        *(TableColumn(key, "float") for key in metrics),
    ]
    records = [
        TableRecord(
            {
                "forecaster": row.name,
                "kind": row.kind,
                "skill": round(row.skill, 6),
                "dm_p_better": float(f"{row.dm.p_value_model_better:.4g}"),
                **{key: round(float(row.metrics[key]), 6) for key in metrics},
            }
        )
        for row in board.rows
    ]
    return MetadataValue.table(records, schema=TableSchema(columns))


@asset(partitions_def=symbols, kinds={"jax"})
def evaluation(
    context: AssetExecutionContext,
    features: pl.DataFrame,
    data_settings: DataSettings,
    evaluation_settings: EvaluationSettings,
) -> Leaderboards:
    """Walk-forward leaderboards per head: each model spec retrained per fold exactly as it is trained for
    publication (scaler fit per fold on train rows only, calibrated on the fold's validation rows) and
    scored beside each head's baselines on the same out-of-sample points."""
    with library_errors_as_failure():
        boards = evaluate_walk_forward(
            features,
            data_settings.data_config(),
            evaluation_settings.walk_forward_config(),
            models=selected_specs(),
            budget=evaluation_settings.budget,
            info={"symbol": context.partition_key, "interval": data_settings.interval},
            on_progress=context.log.info,
        )
    decisions = gate_decisions(boards, evaluation_settings)
    context.add_output_metadata(
        {
            **{f"leaderboard/{head}": leaderboard_table(board) for head, board in boards.boards.items()},
            "leaderboards": MetadataValue.md(boards.to_markdown()),
            **{f"skill/{head}/{row.name}": row.skill for head, board in boards.boards.items() for row in board.rows},
            **{f"gate/{name}/{head}": d.reason for name, heads in decisions.items() for head, d in heads.items()},
        }
    )
    return boards


@asset_check(
    asset="evaluation",
    partitions_def=symbols,
    blocking=True,
    description="At least one head of one model beats its naive reference out of sample (skill > 0, DM p ≤ "
    "level). Forcing publication never turns it green: a forced run fails it with WARN severity, so the "
    "blocking check lets publication through and the UI still shows the failure.",
)
def beats_naive(evaluation: Leaderboards, evaluation_settings: EvaluationSettings) -> AssetCheckResult:
    decisions = gate_decisions(evaluation, evaluation_settings)
    passed = any(d.passed for heads in decisions.values() for d in heads.values())
    forced = evaluation_settings.force_publish
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.WARN if forced and not passed else AssetCheckSeverity.ERROR,
        description="; ".join(
            f"{name}/{head}: {d.reason}" for name, heads in decisions.items() for head, d in heads.items()
        ),
        metadata={
            **{f"passed/{name}/{head}": d.passed for name, heads in decisions.items() for head, d in heads.items()},
            "forced": forced,
        },
    )
