"""Walk-forward evaluation: every forecaster, baselines included, scored on the same out-of-sample points.

Per fold: scaler fit on the fold's train rows (`build_fold_data`), each trained model refit from scratch
on the fold's train segment (early stopping on its val segment), and every forecaster asked for the
fold's test windows. The folds' test points are concatenated in time order; `report.build_leaderboard`
turns them into scores, skill and Diebold–Mariano tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from cse_models.config import DataConfig, Task
from cse_models.errors import DataError
from cse_models.evaluation.baselines import BASELINES, Forecaster, baseline_names
from cse_models.evaluation.folds import Fold, FoldData, WalkForwardConfig, build_fold_data, walk_forward_folds
from cse_models.features.windows import CLASS_NAMES, target_rows

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
FoldBuilder = Callable[[pl.DataFrame, Fold, DataConfig], FoldData]


@dataclass(frozen=True)
class WalkForwardResult:
    """Out-of-sample points of all folds, oldest first, and every forecaster's forecasts for them."""

    task: Task
    horizon: int
    folds: tuple[Fold, ...]
    fold_of: np.ndarray  # [n] fold index of each point
    issue_time_ms: np.ndarray  # [n] open time of the window's last row: when the forecast is made
    target_time_ms: np.ndarray  # [n] open time of the forecast candle
    actual: np.ndarray  # [n] close (regression) or int label (classification)
    last_close: np.ndarray  # [n] the window's last close
    forecasts: dict[str, np.ndarray]  # name → prices [n] or probabilities [n, 3]
    kinds: dict[str, str] = field(default_factory=dict)  # name → "baseline" | "model"
    config: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    fold_times: tuple[dict[str, tuple[int, int]], ...] = ()  # per fold, segment → (first, last) open time ms


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
) -> WalkForwardResult:
    """Every forecaster on every fold's test windows (features: the table of `compute_features`)."""
    folds = walk_forward_folds(features.height, data_cfg, config)
    check_series(features, folds)
    say = on_progress or log.info
    h = data_cfg.horizon
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("fold", "issue", "target", "actual", "last")}
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in forecasters}
    fold_times = []
    for fold in folds:
        data = fold_builder(features, fold, data_cfg)
        test = data.test
        rows = target_rows(test.close.shape[0], data_cfg.seq_len, h)
        parts["fold"].append(np.full(rows.size, fold.index))
        parts["issue"].append(test.open_time_ms[rows - h])
        parts["target"].append(test.open_time_ms[rows])
        parts["actual"].append(test.close[rows] if data_cfg.task == "regression" else test.y)
        parts["last"].append(test.close[rows - h])
        fold_times.append(
            {name: (int(s.open_time_ms[0]), int(s.open_time_ms[-1])) for name, s in data.segments.items()}
        )
        for name, forecast in forecasters.items():
            say(f"fold {fold.index + 1}/{len(folds)}: {name}")
            outputs[name].append(_checked(name, forecast(data), rows.size, data_cfg.task))
    return WalkForwardResult(
        task=data_cfg.task,
        horizon=h,
        folds=tuple(folds),
        fold_of=np.concatenate(parts["fold"]),
        issue_time_ms=np.concatenate(parts["issue"]),
        target_time_ms=np.concatenate(parts["target"]),
        actual=np.concatenate(parts["actual"]),
        last_close=np.concatenate(parts["last"]),
        forecasts={name: np.concatenate(chunks) for name, chunks in outputs.items()},
        kinds={name: (kinds or {}).get(name, "baseline" if name in BASELINES else "model") for name in forecasters},
        config=config,
        fold_times=tuple(fold_times),
    )


def _checked(name: str, forecast: np.ndarray, count: int, task: Task) -> np.ndarray:
    forecast = np.asarray(forecast, dtype=np.float64)
    shape = (count,) if task == "regression" else (count, len(CLASS_NAMES))
    if forecast.shape != shape:
        raise DataError(f"forecaster {name!r} returned shape {forecast.shape}, expected {shape}")
    if not np.isfinite(forecast).all():
        raise DataError(f"forecaster {name!r} returned NaN or inf")
    return forecast


def default_forecasters(
    task: Task,
    models: Sequence[str] = ("lstm_regressor",),
    *,
    budget: str = "tiny",
    preset: str = "demo",
    on_progress: Progress | None = None,
) -> dict[str, Forecaster]:
    """The task's baselines (reference first) and the named models, each trained per fold on a budget."""
    from cse_models.evaluation.trained import trained_forecaster
    from cse_models.training.config import budget as training_budget

    forecasters: dict[str, Forecaster] = {name: BASELINES.get(name).forecast for name in baseline_names(task)}
    train_cfg = training_budget(budget)
    for name in models:
        forecasters[name] = trained_forecaster(name, train_cfg, preset=preset, on_progress=on_progress)
    return forecasters
