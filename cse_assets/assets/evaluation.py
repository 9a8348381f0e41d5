"""Forecast honesty per symbol: walk-forward leaderboards, one per head, of exactly the model specs the
graph trains and publishes (keyed by spec name) against each head's naive baselines, and the
`beats_naive` gate that blocks publication when no head of any model beats its reference.

Built by a factory from the same specs as the model assets (`build_evaluation`), so the evaluation can
never score another model set than the one published."""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
from collections.abc import Sequence

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetExecutionContext, asset, asset_check

from cse_assets.assets import DomainDefinitions
from cse_assets.catalog import EVALUATION, TRAINING_POOL
from cse_assets.failures import library_errors_as_failure
from cse_assets.metadata import leaderboard_table
from cse_assets.partitions import symbols
from cse_assets.resources import DataSettings, EvaluationSettings, TrainingResource
from cse_models.ensembles import default_ensembles
from cse_models.evaluation import Leaderboards, PromotionDecision, evaluate_walk_forward, head_decisions
from cse_models.specs import ModelSpec


def gate_decisions(boards: Leaderboards, settings: EvaluationSettings) -> dict[str, dict[str, PromotionDecision]]:
    """model name → head → verdict (baselines are never published)."""
    return {
        name: head_decisions(boards, name, settings.max_p_value, force=settings.force_publish)
        for name in boards.models()
    }


def build_evaluation(specs: Sequence[ModelSpec]) -> DomainDefinitions:
    """The `evaluation` asset over `specs` and its blocking `beats_naive` check."""
    models = tuple(specs)

    @asset(
        partitions_def=symbols,
        kinds={"jax", "polars"},
        group_name=EVALUATION.group,
        owners=EVALUATION.owners,
        code_version=EVALUATION.code_version,
        pool=TRAINING_POOL,
    )
    def evaluation(
        context: AssetExecutionContext,
        features: pl.DataFrame,
        data_settings: DataSettings,
        evaluation_settings: EvaluationSettings,
        training: TrainingResource,  # unused in the body: its setup turns the JAX compilation cache on
    ) -> Leaderboards:
        """Walk-forward leaderboards per head: each model spec retrained per fold exactly as it is trained for
        publication (scaler fit per fold on train rows only, calibrated on the fold's validation rows), and
        with two or more specs the weighted, stacking and voting ensembles of them (fit per fold on the
        members' validation forecasts), scored beside each head's baselines on the same out-of-sample
        points."""
        with library_errors_as_failure():
            boards = evaluate_walk_forward(
                features,
                data_settings.data_config(),
                evaluation_settings.walk_forward_config(),
                models=models,
                ensembles=default_ensembles(tuple(spec.name for spec in models)),
                budget=evaluation_settings.budget,
                info={"symbol": context.partition_key, "interval": data_settings.interval},
                on_progress=context.log.info,
            )
        decisions = gate_decisions(boards, evaluation_settings)
        context.add_output_metadata(
            {
                **{f"leaderboard/{head}": leaderboard_table(board) for head, board in boards.boards.items()},
                **{
                    f"skill/{head}/{row.name}": row.skill for head, board in boards.boards.items() for row in board.rows
                },
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

    return DomainDefinitions(assets=(evaluation,), checks=(beats_naive,))
