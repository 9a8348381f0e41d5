"""Scores of head forecasts on one segment beside each head's reference baseline — what training reports
as its validation metrics, computed with the leaderboard's own baselines and scoring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cse_models.config import DataConfig
from cse_models.datasets.segments import SplitArrays
from cse_models.features.scaling import FittedScaler
from cse_models.features.windows import target_rows
from cse_models.heads.layout import heads_of_task
from cse_models.heads.registry import HEAD_SPECS
from cse_models.registry import Registry
from cse_models.scoring.baselines import BASELINES, REFERENCE, Forecasts
from cse_models.scoring.folds import Fold, FoldData
from cse_models.scoring.metrics import skill
from cse_models.scoring.rules import SCORING


def segment_truth(split: SplitArrays, data_cfg: DataConfig, feature_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """What each head of the task is scored against, for every window of a segment (`TASK_TRUTHS`)."""
    return TASK_TRUTHS.get(data_cfg.task)(split, data_cfg, feature_names)


def _card_truth(split: SplitArrays, data_cfg: DataConfig, feature_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each forecast head's `HeadSpec.truth` of the segment's targets."""
    t = split.targets(data_cfg, feature_names)
    return {head: HEAD_SPECS.get(head).truth(t) for head in heads_of_task(data_cfg.task)}


def _next_close(split: SplitArrays, data_cfg: DataConfig, _: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The seeds' level task is scored on the close it predicts, unscaled."""
    return {"price": split.close[target_rows(split.close.shape[0], data_cfg.seq_len, data_cfg.horizon)]}


# task name → the truth of its heads on a segment (`heads.tasks` lists the registries a new task adds to)
TASK_TRUTHS: Registry[Callable[[SplitArrays, DataConfig, tuple[str, ...]], dict[str, np.ndarray]]] = Registry(
    "task truth"
)
TASK_TRUTHS.add("forecast", _card_truth)
TASK_TRUTHS.add("classification", lambda split, _cfg, _names: {"direction": split.y})
TASK_TRUTHS.add("regression", _next_close)


def segment_fold(train: SplitArrays, test: SplitArrays, data_cfg: DataConfig, scaler: FittedScaler) -> FoldData:
    """A train and a scored segment as a `FoldData`, so every registered baseline can forecast it."""
    empty = slice(0, 0)
    return FoldData(
        fold=Fold(-1, empty, empty, empty),
        scaler=scaler,
        segments={"train": train, "val": test, "test": test},
        data_cfg=data_cfg,
    )


def score_segment(
    forecasts: Forecasts, train: SplitArrays, test: SplitArrays, data_cfg: DataConfig, scaler: FittedScaler
) -> dict[str, dict[str, Any]]:
    """Scores of the segment's valid windows: {"validation": head → scores, "naive_baseline": head → the
    reference's scores, "skill": head → skill}."""
    data = segment_fold(train, test, data_cfg, scaler)
    valid = test.valid_windows(data_cfg)  # a pooled panel: never a window across two symbols
    truth = segment_truth(test, data_cfg, scaler.feature_names)
    rows = target_rows(test.close.shape[0], data_cfg.seq_len, data_cfg.horizon)
    last = test.close[rows - data_cfg.horizon][valid]
    out: dict[str, dict[str, Any]] = {"validation": {}, "naive_baseline": {}, "skill": {}}
    for head, forecast in forecasts.items():
        scoring = SCORING[head]
        reference = BASELINES.get(REFERENCE[head]).forecast(data)[valid]
        mine = scoring.scores(
            np.asarray(forecast, np.float64)[valid], truth[head][valid], last, data_cfg.interval_level
        )
        ref = scoring.scores(reference, truth[head][valid], last, data_cfg.interval_level)
        out["validation"][head] = mine
        out["naive_baseline"][head] = ref
        out["skill"][head] = skill(mine[scoring.skill_metric], ref[scoring.skill_metric], what=scoring.skill_metric)
    return out
