"""Look-ahead guards for CI: change every row after time t, recompute, demand nothing known by t moved.

A computation under test returns named *stamped* outputs: `(known_at_ms [n], values [n, ...])`, each row
stamped with the earliest time it may honestly be known — a scaled row when both the row and its scaler
exist, a forecast at its issue time (the window's last candle), a fold's scaler at the end of its train
segment. `assert_no_lookahead` runs the computation on a table and on the same table with every row after
t rescaled or shuffled, and raises `LeakageError` naming the first output whose rows stamped ≤ t differ.
`walk_forward_stamps` exposes the walk-forward's folds, per-fold scalers, segments and forecasts this way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import numpy as np
import polars as pl

from cse_models.config import DataConfig
from cse_models.errors import ConfigError, CseError
from cse_models.features.windows import target_rows
from cse_models.heads.tasks import task_spec
from cse_models.scoring.baselines import Forecaster
from cse_models.scoring.folds import Fold, FoldData, WalkForwardConfig, build_fold_data, walk_forward_folds

Stamped = tuple[np.ndarray, np.ndarray]  # (known_at_ms [n], values [n, ...])
Computation = Callable[[pl.DataFrame], Mapping[str, Stamped]]
PanelComputation = Callable[[Mapping[str, pl.DataFrame]], Mapping[str, Stamped]]
Change = Callable[[pl.DataFrame, datetime], pl.DataFrame]
FoldBuilder = Callable[[pl.DataFrame, Fold, DataConfig], FoldData]


class LeakageError(CseError, AssertionError):
    """Something stamped at or before t changed when only rows after t changed: it reads the future."""


def _float_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c, dtype in frame.schema.items() if c != "open_time" and dtype.is_float()]


def scale_after(frame: pl.DataFrame, t: datetime, factor: float = 1.37) -> pl.DataFrame:
    """Every float column of every row after t multiplied by `factor` (prices stay mutually consistent)."""
    later = pl.col("open_time") > t
    return frame.with_columns(
        pl.when(later).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c) for c in _float_columns(frame)
    )


def shuffle_after(frame: pl.DataFrame, t: datetime, seed: int = 3) -> pl.DataFrame:
    """The float columns of the rows after t permuted among those rows; times stay where they are."""
    n_before = frame.filter(pl.col("open_time") <= t).height
    later = np.random.default_rng(seed).permutation(frame.height - n_before)
    order = np.concatenate([np.arange(n_before), n_before + later])
    columns = _float_columns(frame)
    return frame.with_columns(frame.select(columns)[order])


def assert_no_lookahead(compute: Computation, frame: pl.DataFrame, t: datetime, change: Change = shuffle_after) -> None:
    """Raise LeakageError if an output of `compute` stamped ≤ t differs once the rows after t change."""
    changed = _changed(frame, t, change)
    if changed.equals(frame):
        raise ConfigError(f"the change left the rows after {t} as they were: the check would prove nothing")
    compare_stamped(compute(frame), compute(changed), t)


def _changed(frame: pl.DataFrame, t: datetime, change: Change) -> pl.DataFrame:
    """`change(frame, t)`, refused unless it keeps every row at or before t and the row count."""
    changed = change(frame, t)
    early = pl.col("open_time") <= t
    if changed.height != frame.height or not changed.filter(early).equals(frame.filter(early)):
        raise ConfigError("the change must keep every row at or before t, and the row count")
    return changed


def assert_no_panel_lookahead(
    compute: PanelComputation, frames: Mapping[str, pl.DataFrame], t: datetime, change: Change = shuffle_after
) -> None:
    """`assert_no_lookahead` for a panel: every symbol's rows after t change at once, and nothing stamped
    ≤ t of any symbol may move — the guard that catches a global model trained on another symbol's rows
    from after t (per-series cuts), which a one-series check cannot see."""
    changed = {symbol: _changed(frame, t, change) for symbol, frame in frames.items()}
    if all(changed[s].equals(frames[s]) for s in frames):
        raise ConfigError(f"the change left every symbol's rows after {t} as they were: the check would prove nothing")
    compare_stamped(compute(frames), compute(changed), t)


def compare_stamped(base: Mapping[str, Stamped], other: Mapping[str, Stamped], t: datetime) -> None:
    """Raise LeakageError if an output's rows stamped ≤ t differ between the two runs."""
    if set(base) != set(other):
        raise LeakageError(f"the outputs differ in name: {sorted(set(base) ^ set(other))}")
    t_ms = int(t.timestamp() * 1000)
    for name, (known_at, values) in base.items():
        known_other, values_other = other[name]
        a, b = known_at <= t_ms, known_other <= t_ms
        if not np.array_equal(known_at[a], known_other[b]):
            raise LeakageError(f"{name}: which rows are known by {t} depends on rows after it")
        if not np.array_equal(np.asarray(values)[a], np.asarray(values_other)[b], equal_nan=True):
            row = int(np.flatnonzero(a)[_first_difference(np.asarray(values)[a], np.asarray(values_other)[b])])
            raise LeakageError(f"{name}: row {row} known at or before {t} changed when only later rows changed")


def _first_difference(a: np.ndarray, b: np.ndarray) -> int:
    same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
    return int(np.flatnonzero(~same.reshape(same.shape[0], -1).all(axis=1))[0])


def walk_forward_stamps(
    data_cfg: DataConfig,
    config: WalkForwardConfig,
    forecasters: Mapping[str, Forecaster] | None = None,
    *,
    fold_builder: FoldBuilder = build_fold_data,
) -> Computation:
    """The walk-forward's intermediate results on a feature table, stamped: per fold its row bounds, its
    scaler (known at the end of its train segment), every segment's scaled rows and targets, and each
    forecaster's test forecasts (known at their issue time)."""
    forecasters = forecasters or {}
    h = data_cfg.horizon

    def compute(features: pl.DataFrame) -> dict[str, Stamped]:
        out: dict[str, Stamped] = {}
        for fold in walk_forward_folds(features.height, data_cfg, config):
            data = fold_builder(features, fold, data_cfg)
            key = f"fold{fold.index}"
            bounds = [[p.start, p.stop] for p in fold.segments().values()]
            out[f"{key}.rows"] = (data.segments["train"].open_time_ms[:1], np.asarray([bounds]))
            fit_at = int(data.segments["train"].open_time_ms[-1])
            out[f"{key}.scaler"] = (np.asarray([fit_at]), np.asarray([data.scaler.min + data.scaler.scale]))
            for name, part in data.segments.items():
                rows = target_rows(part.close.shape[0], data_cfg.seq_len, h)
                y_known = part.open_time_ms[rows]
                if task_spec(data_cfg.task).target_needs_scaler:  # e.g. a scaled close
                    y_known = np.maximum(y_known, fit_at)
                out[f"{key}.{name}.x"] = (np.maximum(part.open_time_ms, fit_at), part.x)
                out[f"{key}.{name}.y"] = (y_known, part.y)
            issued = data.test.open_time_ms[target_rows(data.test.close.shape[0], data_cfg.seq_len, h) - h]
            for name, forecast in forecasters.items():
                for head, values in forecast(data).items():
                    out[f"{key}.{name}.{head}"] = (issued, np.asarray(values))
        return out

    return compute
