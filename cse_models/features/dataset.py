"""From clean klines to scaled, split training data — the pure core of the `features`, `scaler` and
`datasets` assets.

Order matters for honesty: features (row-local, no look-ahead) → chronological split → scaler fit on
the train segment only → every segment scaled with that scaler → windows inside each segment.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def kline_columns(klines: pl.DataFrame) -> dict[str, np.ndarray]:
    """Polars klines → the numpy columns feature sets take (open_time as int64 unix ms)."""
    check_finite_prices(klines)
    cols = {c: klines.get_column(c).to_numpy() for c in ("open", "high", "low", "close", "volume")}
    cols["open_time"] = klines.get_column("open_time").dt.epoch("ms").to_numpy()
    return cols


def compute_features(klines: pl.DataFrame, feature_set: str) -> pl.DataFrame:
    """Clean klines → a feature table (open_time + the set's columns), warm-up rows dropped."""
    fs = get_feature_set(feature_set)
    values = fs(kline_columns(klines))[fs.warmup :]
    columns = [pl.Series(name, values[:, i], dtype=pl.Float64) for i, name in enumerate(fs.feature_names)]
    return pl.DataFrame([klines.get_column("open_time")[fs.warmup :], *columns])


def feature_matrix(features: pl.DataFrame, names: tuple[str, ...], rows: slice = slice(None)) -> np.ndarray:
    """The named feature columns (rows `rows`) as float64 `[rows, f]`, column-major: one copy per column
    straight from polars' buffers, cheaper than `DataFrame.to_numpy()`."""
    out = np.empty((len(range(features.height)[rows]), len(names)), dtype=np.float64, order="F")
    for i, name in enumerate(names):
        out[:, i] = features.get_column(name).to_numpy()[rows]
    return out


@dataclass(frozen=True)
class SplitArrays:
    """One chronological segment: scaled features `[rows, f]`, raw close `[rows]`, open_time ms `[rows]`,
    and one target per window."""

    x: np.ndarray
    close: np.ndarray
    open_time_ms: np.ndarray
    y: np.ndarray

    def windows(self, seq_len: int, horizon: int) -> np.ndarray:
        return sliding_windows(self.x, seq_len, horizon)


def fit_feature_scaler(features: pl.DataFrame, config: DataConfig) -> FittedScaler:
    """Fit the configured scaler on the train segment of the feature table — and nothing else."""
    names = tuple(c for c in features.columns if c != "open_time")
    slices = _slices(features.height, config)
    values = feature_matrix(features, names, slices["train"])
    times = features.get_column("open_time").dt.epoch("ms").to_numpy()[slices["train"]]
    return fit_scaler(config.scaler, values, names, times)


def build_datasets(features: pl.DataFrame, scaler: FittedScaler, config: DataConfig) -> dict[str, SplitArrays]:
    names = tuple(c for c in features.columns if c != "open_time")
    if names != scaler.feature_names:
        raise DataError(f"features {names} do not match the scaler's {scaler.feature_names}")
    values = feature_matrix(features, names)
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataError(f"feature table has a non-finite value at row {row}")
    scaled = scaler.transform(values).astype(np.float32)
    times = features.get_column("open_time").dt.epoch("ms").to_numpy()
    close = features.get_column("close").to_numpy() if "close" in names else None
    if close is None:
        raise DataError("the feature set must contain 'close' (the target)")
    target_col = names.index("close")
    out = {}
    for split, part in _slices(features.height, config).items():
        if config.task == "regression":
            y = regression_targets(scaled[part, target_col], config.seq_len, config.horizon)
        else:
            y = classification_targets(close[part], config.seq_len, config.horizon, config.hold_band)
        out[split] = SplitArrays(x=scaled[part], close=close[part], open_time_ms=times[part], y=y)
    return out


def _slices(n_rows: int, config: DataConfig) -> dict[str, slice]:
    return chronological_split(n_rows, config.split, min_rows=config.seq_len + config.horizon + 1, purge=config.purge)


def save_datasets(datasets: dict[str, SplitArrays], path: str | Path) -> None:
    arrays = {
        f"{split}_{field}": getattr(arr, field)
        for split, arr in datasets.items()
        for field in ("x", "close", "open_time_ms", "y")
    }
    np.savez(path, **arrays)


def load_datasets(path: str | Path) -> dict[str, SplitArrays]:
    with np.load(path) as data:
        return {
            split: SplitArrays(**{f: data[f"{split}_{f}"] for f in ("x", "close", "open_time_ms", "y")})
            for split in SPLITS
        }


def window_count(arrays: SplitArrays, config: DataConfig) -> int:
    return n_windows(arrays.x.shape[0], config.seq_len, config.horizon)
