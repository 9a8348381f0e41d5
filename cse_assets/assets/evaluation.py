"""Forecast honesty per symbol: a walk-forward leaderboard of every model against naive baselines, and
the `beats_naive` gate that blocks publication of a model that does not beat persistence."""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
import json

import polars as pl
from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, asset, asset_check

from cse_assets.failures import library_errors_as_failure
from cse_assets.io import Codec, register_codec
from cse_assets.model_specs import selected_specs
from cse_assets.partitions import symbols
from cse_assets.resources import DataSettings, EvaluationSettings
from cse_models.evaluation import Leaderboard, evaluate_walk_forward, promotion_decision
from cse_models.evaluation.report import PromotionDecision

register_codec(
    Leaderboard,
    Codec(
        "leaderboard.json",
        lambda board, path: path.write_text(board.to_json()),
        lambda path: Leaderboard.from_dict(json.loads(path.read_text())),
    ),
)


def gate_decisions(board: Leaderboard, settings: EvaluationSettings) -> dict[str, PromotionDecision]:
    """The promotion verdict of every model on the leaderboard (baselines are never published)."""
    return {
        row.name: promotion_decision(board, row.name, settings.max_p_value, force=settings.force_publish)
        for row in board.rows
        if row.kind == "model"
    }


@asset(partitions_def=symbols, kinds={"jax"})
def evaluation(
    context: AssetExecutionContext,
    features: pl.DataFrame,
    data_settings: DataSettings,
    evaluation_settings: EvaluationSettings,
) -> Leaderboard:
    """Walk-forward leaderboard: each model retrained per fold (scaler fit per fold on train rows only)
    and scored beside persistence, drift and moving average on the same out-of-sample points."""
    specs = selected_specs()
    with library_errors_as_failure():
        board = evaluate_walk_forward(
            features,
            data_settings.data_config(),
            evaluation_settings.walk_forward_config(),
            models=[spec.architecture for spec in specs],
            budget=evaluation_settings.budget,
            preset=specs[0].preset,
            info={"symbol": context.partition_key, "interval": data_settings.interval},
        )
    decisions = gate_decisions(board, evaluation_settings)
    context.add_output_metadata(
        {
            "leaderboard": MetadataValue.md(board.to_markdown()),
            **{f"skill/{row.name}": row.skill for row in board.rows},
            **{f"gate/{name}": d.reason for name, d in decisions.items()},
        }
    )
    return board


@asset_check(
    asset="evaluation",
    partitions_def=symbols,
    blocking=True,
    description="At least one model beats persistence out of sample (skill > 0, DM p ≤ level), "
    "or publication is forced (recorded in the manifest).",
)
def beats_naive(evaluation: Leaderboard, evaluation_settings: EvaluationSettings) -> AssetCheckResult:
    decisions = gate_decisions(evaluation, evaluation_settings)
    passed = any(d.publish for d in decisions.values())
    return AssetCheckResult(
        passed=passed,
        description="; ".join(f"{name}: {d.reason}" for name, d in decisions.items()),
        metadata={f"publish/{name}": d.publish for name, d in decisions.items()}
        | {"forced": evaluation_settings.force_publish},
    )
