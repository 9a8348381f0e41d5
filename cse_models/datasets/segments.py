"""From clean klines to scaled, split training data — the pure core of the `features`, `scaler` and
`datasets` assets.

Order matters for honesty: features (row-local, no look-ahead) → chronological split → scaler fit on
the train segment only → every segment scaled with that scaler → windows inside each segment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from cse_models.config import DataConfig
from cse_models.data.schema import check_finite_prices
from cse_models.errors import DataError
from cse_models.features.scaling import FittedScaler, fit_scaler
from cse_models.features.sets import get_feature_set
from cse_models.features.split import SPLITS, chronological_split
from cse_models.features.windows import (
    classification_targets,
    n_windows,
    regression_targets,
    sliding_windows,
)
from cse_models.heads.layout import SIGMA_FEATURE, require_head_features
from cse_models.heads.targets import HeadTargets, forecast_targets, head_targets, require_volatility
from cse_models.registry import Registry


def kline_columns(klines: pl.DataFrame) -> dict[str, np.ndarray]:
    """Polars klines → the numpy columns feature sets take (open_time as int64 unix ms)."""
    check_finite_prices(klines)
    cols = {c: klines.get_column(c).to_numpy() for c in ("open", "high", "low", "close", "volume")}
    cols["open_time"] = epoch_ms(klines.get_column("open_time"))
    return cols


def epoch_ms(times: pl.Series) -> np.ndarray:
    """Datetimes → int64 unix ms (`dt.epoch("ms")`); a millisecond column, the canonical schema's, is read
    in place (its physical values are the ms) instead of converted."""
    if times.dtype == pl.Datetime("ms", times.dtype.time_zone):
        return times.to_numpy().view(np.int64)
    return times.dt.epoch("ms").to_numpy()


PRICE_COLUMNS = ("high", "low", "close")  # kept in every feature table: the targets are computed from them


def compute_features(klines: pl.DataFrame, feature_set: str) -> pl.DataFrame:
    """Clean klines → a feature table (open_time, the set's columns, and high/low/close where the set lacks
    them — targets and baselines need the prices even when no feature does), warm-up rows dropped."""
    fs = get_feature_set(feature_set)
    if klines.height <= fs.warmup:
        raise DataError(
            f"insufficient history: {klines.height} candles, {fs.warmup + 1} needed — feature set {feature_set!r} "
            f"needs more than {fs.warmup} klines (its warm-up: the first {fs.warmup} rows have no value)"
        )
    values = np.asarray(fs(kline_columns(klines))[fs.warmup :], dtype=np.float64)  # Float64 columns, no cast
    columns = [pl.Series(name, values[:, i]) for i, name in enumerate(fs.feature_names)]
    prices = [klines.get_column(c)[fs.warmup :] for c in PRICE_COLUMNS if c not in fs.feature_names]
    return pl.DataFrame([klines.get_column("open_time")[fs.warmup :], *columns, *prices])


def feature_names_of(features: pl.DataFrame, config: DataConfig) -> tuple[str, ...]:
    """The configured feature set's columns, checked against the table (a table of another set fails here)."""
    names = get_feature_set(config.feature_set).feature_names
    columns = set(features.columns)
    missing = [n for n in (*names, *PRICE_COLUMNS) if n not in columns]
    if missing:
        raise DataError(
            f"the feature table lacks {missing} of feature set {config.feature_set!r}; "
            f"it has {features.columns[1:]} (computed with another feature set?)"
        )
    require_head_features(config.task, names, config.feature_set)
    return names


def feature_matrix(features: pl.DataFrame, names: tuple[str, ...], rows: slice = slice(None)) -> np.ndarray:
    """The named feature columns (rows `rows`) as float64 `[rows, f]`, column-major: one copy per column
    straight from polars' buffers, cheaper than `DataFrame.to_numpy()`."""
    out = np.empty((len(range(features.height)[rows]), len(names)), dtype=np.float64, order="F")
    for i, name in enumerate(names):
        out[:, i] = features.get_column(name).to_numpy()[rows]
    return out


@dataclass(frozen=True)
class SplitArrays:
    """One chronological segment: scaled features `[rows, f]` (what the network reads), the raw features
    `[rows, f]` float32 (what the exported graph reads), raw close/high/low `[rows]`, open_time ms `[rows]`,
    and one target per window (`[n]`, or `[n, 3]` for the forecast task)."""

    x: np.ndarray
    raw: np.ndarray
    close: np.ndarray
    high: np.ndarray
    low: np.ndarray
    open_time_ms: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None = None  # per window; None: all 1. A pooled panel's 0s mark windows across symbols

    def valid_windows(self, config: DataConfig) -> np.ndarray:
        """Indices of the windows a model learns from and is scored on: every window of one series; in a
        pooled panel (`datasets.pooled`) those with a positive weight, never one that spans two symbols."""
        count = window_count(self, config)
        return np.arange(count) if self.weights is None else np.flatnonzero(self.weights[:count] > 0)

    def window_weights(self, config: DataConfig) -> np.ndarray:
        """The weight of each window `[n]` (1 for a single series)."""
        count = window_count(self, config)
        return np.ones(count, np.float32) if self.weights is None else self.weights[:count].astype(np.float32)

    def issue_times(self, config: DataConfig) -> np.ndarray:
        """Open time (ms) of each window's last row: when its forecast is made."""
        return self.open_time_ms[config.seq_len - 1 : config.seq_len - 1 + window_count(self, config)]

    def windows(self, seq_len: int, horizon: int) -> np.ndarray:
        return sliding_windows(self.x, seq_len, horizon)

    def targets(self, config: DataConfig, feature_names: tuple[str, ...]) -> HeadTargets:
        """What happened after each window, for every head (see `cse_models.heads.targets`)."""
        return head_targets(
            self.close,
            self.high,
            self.low,
            self.raw,
            feature_names,
            config.seq_len,
            config.horizon,
            config.hold_band_sigmas,
        )

    def valid_targets(self, config: DataConfig, feature_names: tuple[str, ...]) -> HeadTargets:
        """`targets` of the valid windows only (`valid_windows`)."""
        return self.targets(config, feature_names).take(self.valid_windows(config))


SPLIT_FIELDS = ("x", "raw", "close", "high", "low", "open_time_ms", "y")


def fit_feature_scaler(features: pl.DataFrame, config: DataConfig) -> FittedScaler:
    """Fit the configured scaler on the train segment of the feature table — and nothing else."""
    names = feature_names_of(features, config)
    slices = _slices(features.height, config)
    values = feature_matrix(features, names, slices["train"])
    times = epoch_ms(features.get_column("open_time"))[slices["train"]]
    return fit_scaler(config.scaler, values, names, times)


def build_segments(
    features: pl.DataFrame, scaler: FittedScaler, config: DataConfig, segments: dict[str, slice]
) -> dict[str, SplitArrays]:
    """Scale the rows of each segment with `scaler` and build its targets — the one implementation behind
    the single split (`build_datasets`) and every walk-forward fold (`evaluation.folds.build_fold_data`).

    Only the rows from the first segment's start to the last one's stop are read, so a fold never touches
    a later row."""
    names = feature_names_of(features, config)
    if names != scaler.feature_names:
        raise DataError(f"features {names} do not match the scaler's {scaler.feature_names}")
    first = min(part.start for part in segments.values())
    last = max(part.stop for part in segments.values())
    scaled, raw = _scaled_and_raw(features, names, scaler, slice(first, last))
    times = epoch_ms(features.get_column("open_time"))[first:last]
    prices = {c: features.get_column(c).to_numpy()[first:last] for c in PRICE_COLUMNS}
    span = SplitArrays(scaled, raw, prices["close"], prices["high"], prices["low"], times, np.empty(0, np.float32))
    local = {name: slice(part.start - first, part.stop - first) for name, part in segments.items()}
    targets = _segment_targets(span, local, names, config)
    return {name: SplitArrays(**_rows(span, rows), y=targets[name]) for name, rows in local.items()}


def _segment_targets(
    span: SplitArrays, segments: dict[str, slice], names: tuple[str, ...], config: DataConfig
) -> dict[str, np.ndarray]:
    """Each segment's window targets. Every target is a function of its own window's rows only, so they are
    computed once over the whole span and sliced: segment window i is span window `start + i` (windows that
    cross a segment's end are computed and dropped). The task's check of the windows (`TaskTarget`; the
    forecast task's: volatility is not 0 in every window) stays per segment. With no window in any segment,
    each segment computes its own (empty) ones."""
    counts = {
        name: n_windows(rows.stop - rows.start, config.seq_len, config.horizon) for name, rows in segments.items()
    }
    if not any(counts.values()):
        return {name: _targets(replace(span, **_rows(span, rows)), names, config) for name, rows in segments.items()}
    check = TASK_TARGETS.get(config.task).check_last_rows
    for name, rows in segments.items():
        last = rows.start + config.seq_len - 1
        check(span.raw[last : last + counts[name]], names, config)
    y = _targets(span, names, config)
    return {name: y[rows.start : rows.start + counts[name]] for name, rows in segments.items()}


def _rows(span: SplitArrays, rows: slice) -> dict[str, np.ndarray]:
    """The row fields (all but y) of `rows` of the span."""
    return {field: getattr(span, field)[rows] for field in SPLIT_FIELDS if field != "y"}


def _scaled_and_raw(
    features: pl.DataFrame, names: tuple[str, ...], scaler: FittedScaler, rows: slice
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled and raw float32 `[rows, f]` (column-major) of the named columns, one column at a time through
    one float64 scratch row: the numbers of `scaler.transform(feature_matrix(...)).astype(np.float32)` without
    its four `[rows, f]` float64 temporaries (at 10k rows their fresh pages cost more than the arithmetic)."""
    columns = [np.asarray(features.get_column(name).to_numpy()[rows], dtype=np.float64) for name in names]
    if not all(np.isfinite(column).all() for column in columns):
        values = feature_matrix(features, names, rows)
        row = rows.start + int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataError(f"feature table has a non-finite value at row {row}")
    shape = (len(columns[0]), len(columns))
    scaled = np.empty(shape, dtype=np.float32, order="F")
    raw = np.empty(shape, dtype=np.float32, order="F")
    scratch = np.empty(shape[0])
    for i, column in enumerate(columns):
        raw[:, i] = column
        scaled[:, i] = scaler.transform_column(column, i, scratch)
    return scaled, raw


def _targets(arrays: SplitArrays, names: tuple[str, ...], config: DataConfig) -> np.ndarray:
    return TASK_TARGETS.get(config.task).targets(arrays, names, config)


TargetsOf = Callable[[SplitArrays, tuple[str, ...], DataConfig], np.ndarray]
RowsCheck = Callable[[np.ndarray, tuple[str, ...], DataConfig], None]


def _no_check(last_rows: np.ndarray, names: tuple[str, ...], config: DataConfig) -> None:
    """A task whose targets are defined for every window."""


@dataclass(frozen=True)
class TaskTarget:
    """A task's training target of every window of a span (`targets`), and what each segment's windows
    must satisfy first (`check_last_rows`: the raw last row of each window `[n, f]`)."""

    targets: TargetsOf
    check_last_rows: RowsCheck = _no_check


def _sigma_is_positive(last_rows: np.ndarray, names: tuple[str, ...], config: DataConfig) -> None:
    """The forecast targets divide by σ·√h: volatility must not be 0 in every window of a segment."""
    require_volatility(last_rows[:, names.index(SIGMA_FEATURE)].astype(np.float64) * np.sqrt(config.horizon))


def _regression_targets(arrays: SplitArrays, names: tuple[str, ...], config: DataConfig) -> np.ndarray:
    if "close" not in names:
        raise DataError("the regression task predicts the scaled close: the feature set must contain 'close'")
    return regression_targets(arrays.x[:, names.index("close")], config.seq_len, config.horizon)


# task name → its training target (`heads.tasks` lists the registries a new task adds an entry to)
TASK_TARGETS: Registry[TaskTarget] = Registry("task target")
TASK_TARGETS.add(
    "forecast", TaskTarget(lambda a, names, cfg: forecast_targets(a.targets(cfg, names)), _sigma_is_positive)
)
TASK_TARGETS.add(
    "classification",
    TaskTarget(lambda a, _, cfg: classification_targets(a.close, cfg.seq_len, cfg.horizon, cfg.hold_band)),
)
TASK_TARGETS.add("regression", TaskTarget(_regression_targets))


def build_datasets(features: pl.DataFrame, scaler: FittedScaler, config: DataConfig) -> dict[str, SplitArrays]:
    return build_segments(features, scaler, config, _slices(features.height, config))


def _slices(n_rows: int, config: DataConfig) -> dict[str, slice]:
    return chronological_split(n_rows, config.split, min_rows=config.seq_len + config.horizon + 1, purge=config.purge)


def save_datasets(datasets: dict[str, SplitArrays], path: str | Path) -> None:
    arrays = {f"{split}_{field}": getattr(arr, field) for split, arr in datasets.items() for field in SPLIT_FIELDS}
    np.savez(path, **arrays)


def load_datasets(path: str | Path) -> dict[str, SplitArrays]:
    with np.load(path) as data:
        return {split: SplitArrays(**{f: data[f"{split}_{f}"] for f in SPLIT_FIELDS}) for split in SPLITS}


def window_count(arrays: SplitArrays, config: DataConfig) -> int:
    return n_windows(arrays.x.shape[0], config.seq_len, config.horizon)
