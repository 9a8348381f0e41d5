"""One call from a feature table to a leaderboard: what the CLI and the Dagster asset run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from cse_models.config import DataConfig
from cse_models.ensembles.config import EnsembleConfig
from cse_models.evaluation.report import Leaderboards, build_leaderboards
from cse_models.evaluation.walk_forward import Progress, default_forecasters, run_walk_forward
from cse_models.scoring.folds import WalkForwardConfig
from cse_models.specs import ModelSpec


def evaluate_walk_forward(
    features: pl.DataFrame,
    data_cfg: DataConfig | None = None,
    config: WalkForwardConfig | None = None,
    *,
    models: Sequence[ModelSpec] = (),
    ensembles: Sequence[EnsembleConfig] = (),
    budget: str = "tiny",
    dm_loss: str = "absolute",
    info: dict[str, Any] | None = None,
    on_progress: Progress | None = None,
) -> Leaderboards:
    """Walk-forward the task's baselines, the model specs (retrained per fold on `budget`) and ensembles of
    them (fit per fold on the members' validation forecasts) over
    `features` (the table of `compute_features`) and rank them, head by head. Raises DataError for too few
    rows (saying how many are needed), a gap longer than a fold's test block, or constant prices."""
    data_cfg = data_cfg or DataConfig()
    config = config or WalkForwardConfig()
    forecasters = default_forecasters(
        data_cfg.task, models, ensembles=ensembles, budget=budget, on_progress=on_progress
    )
    result = run_walk_forward(features, data_cfg, config, forecasters, on_progress=on_progress)
    settings = {
        "budget": budget,
        "seq_len": data_cfg.seq_len,
        "feature_set": data_cfg.feature_set,
        "task": data_cfg.task,
    }
    return build_leaderboards(result, dm_loss=dm_loss, info={**settings, **(info or {})})
