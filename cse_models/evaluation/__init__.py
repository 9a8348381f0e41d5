"""Forecast honesty: baselines, walk-forward evaluation, Diebold–Mariano tests, the leaderboard and the
promotion gate, and look-ahead guards for CI. numpy + polars only; jax is imported when a model trains.

    boards = evaluate_walk_forward(features, DataConfig(), WalkForwardConfig(n_folds=3),
                                   models=[ModelSpec("lstm", "lstm_regressor", "demo")], budget="tiny")
    verdicts = head_decisions(boards, "lstm", max_p_value=0.05)
"""

from cse_models.evaluation.evaluate import evaluate_walk_forward
from cse_models.evaluation.report import (
    Leaderboard,
    LeaderboardRow,
    Leaderboards,
    PromotionDecision,
    build_leaderboard,
    build_leaderboards,
    head_decisions,
    promotion_decision,
)
from cse_models.evaluation.walk_forward import WalkForwardResult, default_forecasters, run_walk_forward
from cse_models.scoring.baselines import BASELINES, REFERENCE, Baseline, Forecaster, baseline_names
from cse_models.scoring.dm_test import DMResult, diebold_mariano, diebold_mariano_losses, student_t_cdf
from cse_models.scoring.folds import (
    Fold,
    FoldData,
    WalkForwardConfig,
    build_fold_data,
    rows_needed,
    walk_forward_folds,
)
from cse_models.scoring.leakage import (
    LeakageError,
    assert_no_lookahead,
    scale_after,
    shuffle_after,
    walk_forward_stamps,
)
from cse_models.scoring.metrics import brier_losses, classification_scores, regression_scores, skill

__all__ = [
    "BASELINES",
    "REFERENCE",
    "Baseline",
    "DMResult",
    "Fold",
    "FoldData",
    "Forecaster",
    "Leaderboard",
    "LeaderboardRow",
    "Leaderboards",
    "LeakageError",
    "PromotionDecision",
    "WalkForwardConfig",
    "WalkForwardResult",
    "assert_no_lookahead",
    "baseline_names",
    "brier_losses",
    "build_fold_data",
    "build_leaderboard",
    "build_leaderboards",
    "classification_scores",
    "default_forecasters",
    "diebold_mariano",
    "diebold_mariano_losses",
    "evaluate_walk_forward",
    "head_decisions",
    "promotion_decision",
    "regression_scores",
    "rows_needed",
    "run_walk_forward",
    "scale_after",
    "shuffle_after",
    "skill",
    "student_t_cdf",
    "walk_forward_folds",
    "walk_forward_stamps",
]
