"""Walk-forward evaluation: every forecaster, baselines included, scored on the same out-of-sample points,
head by head.

Per fold: scaler fit on the fold's train rows (`build_fold_data`), each trained model refit from scratch
on the fold's train segment (early stopping on its val segment), and every forecaster asked for the
fold's test windows. The folds' test points are concatenated in time order; `report.build_leaderboard`
turns them into scores, skill and Diebold–Mariano tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from cse_models.config import DataConfig, Task
from cse_models.ensembles.config import EnsembleConfig
from cse_models.errors import ConfigError, DataError
from cse_models.features.windows import target_rows
from cse_models.heads.layout import heads_of_task
from cse_models.heads.registry import HEAD_SPECS
from cse_models.heads.tasks import task_spec
from cse_models.scoring.baselines import BASELINES, Forecaster, baseline_names
from cse_models.scoring.folds import Fold, FoldData, WalkForwardConfig, build_fold_data, walk_forward_folds
from cse_models.scoring.segment import segment_truth
from cse_models.specs import ModelSpec

if TYPE_CHECKING:
    from cse_models.evaluation.ensembled import MemberForecasts

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
FoldBuilder = Callable[[pl.DataFrame, Fold, DataConfig], FoldData]


@dataclass(frozen=True)
class WalkForwardResult:
    """Out-of-sample points of all folds, oldest first, and every forecaster's forecasts for them, per head."""

    task: Task
    horizon: int
    folds: tuple[Fold, ...]
    fold_of: np.ndarray  # [n] fold index of each point
    issue_time_ms: np.ndarray  # [n] open time of the window's last row: when the forecast is made
    target_time_ms: np.ndarray  # [n] open time of the forecast candle
    truth: dict[str, np.ndarray]  # head → what it is scored against (`HeadSpec.truth`)
    last_close: np.ndarray  # [n] the window's last close
    forecasts: dict[str, dict[str, np.ndarray]]  # head → forecaster name → forecasts
    kinds: dict[str, str] = field(default_factory=dict)  # name → "baseline" | "model"
    config: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    fold_times: tuple[dict[str, tuple[int, int]], ...] = ()  # per fold, segment → (first, last) open time ms
    interval_level: float = 0.8

    @property
    def heads(self) -> tuple[str, ...]:
        return tuple(self.forecasts)


def check_series(features: pl.DataFrame, folds: Sequence[Fold]) -> None:
    """Refuse series the evaluation cannot score honestly: constant prices (persistence is perfect, skill
    undefined) and a gap of missing candles longer than a fold's test block."""
    close = features.get_column("close").to_numpy()
    if close.size and np.all(close == close[0]):
        raise DataError(f"constant prices: every close is {close[0]}, so persistence's MAE is 0 and skill is undefined")
    times = features.get_column("open_time").dt.epoch("ms").to_numpy()
    if times.size < 2:
        return
    steps = np.diff(times)
    step = int(np.median(steps))
    missing = steps // max(step, 1) - 1
    test_rows = min(f.test.stop - f.test.start for f in folds)
    worst = int(np.argmax(missing))
    if missing[worst] > test_rows:
        raise DataError(
            f"a gap of {int(missing[worst])} missing candles after {features['open_time'][worst]} is longer than "
            f"a fold's test block ({test_rows} rows); pick a range without it or fill gaps when cleaning"
        )


def run_walk_forward(
    features: pl.DataFrame,
    data_cfg: DataConfig,
    config: WalkForwardConfig,
    forecasters: Mapping[str, Forecaster],
    *,
    kinds: Mapping[str, str] | None = None,  # default: "baseline" for registered baselines, else "model"
    on_progress: Progress | None = None,
    fold_builder: FoldBuilder = build_fold_data,
    folds: Sequence[Fold] | None = None,
) -> WalkForwardResult:
    """Every forecaster on every fold's test windows (features: the table of `compute_features`). Each
    forecaster answers the heads it has; a head is scored on the forecasters that answered it. `folds`:
    the series' row folds (default: `walk_forward_folds` of its rows; a panel passes its calendar folds)."""
    folds = walk_forward_folds(features.height, data_cfg, config) if folds is None else list(folds)
    check_series(features, folds)
    say = on_progress or log.info
    h = data_cfg.horizon
    heads = heads_of_task(data_cfg.task)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("fold", "issue", "target", "last")}
    truth: dict[str, list[np.ndarray]] = {head: [] for head in heads}
    outputs: dict[str, dict[str, list[np.ndarray]]] = {head: {} for head in heads}
    fold_times = []
    for fold in folds:
        data = fold_builder(features, fold, data_cfg)
        test = data.test
        rows = target_rows(test.close.shape[0], data_cfg.seq_len, h)
        parts["fold"].append(np.full(rows.size, fold.index))
        parts["issue"].append(test.open_time_ms[rows - h])
        parts["target"].append(test.open_time_ms[rows])
        parts["last"].append(test.close[rows - h])
        for head, values in segment_truth(test, data_cfg, data.scaler.feature_names).items():
            truth[head].append(values)
        fold_times.append(
            {name: (int(s.open_time_ms[0]), int(s.open_time_ms[-1])) for name, s in data.segments.items()}
        )
        for name, forecast in forecasters.items():
            say(f"fold {fold.index + 1}/{len(folds)}: {name}")
            for head, values in forecast(data).items():
                if head not in outputs:
                    raise DataError(f"forecaster {name!r} answered head {head!r}; the task has {list(heads)}")
                outputs[head].setdefault(name, []).append(_checked(name, head, values, rows.size))
    return WalkForwardResult(
        task=data_cfg.task,
        horizon=h,
        folds=tuple(folds),
        fold_of=np.concatenate(parts["fold"]),
        issue_time_ms=np.concatenate(parts["issue"]),
        target_time_ms=np.concatenate(parts["target"]),
        truth={head: np.concatenate(chunks) for head, chunks in truth.items()},
        last_close=np.concatenate(parts["last"]),
        forecasts={
            head: {name: np.concatenate(chunks) for name, chunks in by_name.items() if len(chunks) == len(folds)}
            for head, by_name in outputs.items()
        },
        kinds={name: (kinds or {}).get(name, "baseline" if name in BASELINES else "model") for name in forecasters},
        config=config,
        fold_times=tuple(fold_times),
        interval_level=data_cfg.interval_level,
    )


def _checked(name: str, head: str, forecast: np.ndarray, count: int) -> np.ndarray:
    forecast = np.asarray(forecast, dtype=np.float64)
    shape = (count, *HEAD_SPECS.get(head).shape)
    if forecast.shape != shape:
        raise DataError(f"forecaster {name!r} returned shape {forecast.shape} for head {head!r}, expected {shape}")
    if not np.isfinite(forecast).all():
        raise DataError(f"forecaster {name!r} returned NaN or inf for head {head!r}")
    return forecast


def baseline_forecasters(task: Task) -> dict[str, Forecaster]:
    """The task's registered baselines, each head's reference first."""
    return {name: BASELINES.get(name).forecaster() for name in baseline_names(task)}


def member_forecasters(
    models: Sequence[ModelSpec], budget: str, memory: MemberForecasts, on_progress: Progress | None = None
) -> dict[str, Forecaster]:
    """Each model spec trained per fold on a budget exactly as the graph trains it for publication
    (`trained.trained_forecaster`), its validation and test forecasts kept in `memory` for ensembles."""
    from cse_models.evaluation.trained import trained_forecaster
    from cse_models.training.config import budget as training_budget

    train_cfg = training_budget(budget)
    forecasters = {}
    for spec in models:
        trained = trained_forecaster(spec, train_cfg, on_progress=on_progress, on_fitted=memory.on_fitted(spec.name))
        forecasters[spec.name] = memory.keeping(spec.name, trained)
    return forecasters


def default_forecasters(
    task: Task,
    models: Sequence[ModelSpec] = (),
    *,
    ensembles: Sequence[EnsembleConfig] = (),
    budget: str = "tiny",
    on_progress: Progress | None = None,
) -> dict[str, Forecaster]:
    """The task's baselines, the model specs (`member_forecasters`), then the ensembles of those models,
    fit per fold on their validation forecasts (`ensembled`)."""
    from cse_models.evaluation.ensembled import MemberForecasts, ensemble_forecaster

    names = {spec.name for spec in models}
    for cfg in ensembles:
        unknown = sorted(set(cfg.members) - names)
        if unknown or not task_spec(task).card:
            raise ConfigError(
                f"ensemble {cfg.name!r}: members {unknown} are not among the models {sorted(names)}"
                if unknown
                else f"ensembles combine forecast cards; task {task!r} has none"
            )
    memory = MemberForecasts()
    forecasters = {**baseline_forecasters(task), **member_forecasters(models, budget, memory, on_progress)}
    for cfg in ensembles:
        forecasters[cfg.name] = ensemble_forecaster(cfg, memory)
    return forecasters
