"""Walk-forward folds: chronological test blocks, each preceded by its own train and validation rows.

Fold k (of n_folds, oldest first) tests on one block of the last n_folds·test_rows rows. Everything the
fold learns from lies before that block, with a purge gap of ≥ seq_len rows so that no training window or
target touches a test window's inputs:

    [ train ........ ]  purge  [ val ]  purge  [ test_k ]          expanding: train starts at row 0
          [ train ... ]  purge  [ val ]  purge  [ test_k ]         sliding: a fixed-length train region

Per fold the scaler is fit on the fold's train rows only (`build_fold_data`), as `fit_feature_scaler`
does for the single split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from cse_models.config import DataConfig
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import SplitArrays, build_segments, feature_matrix, feature_names_of
from cse_models.errors import ConfigError, DataError
from cse_models.features.scaling import FittedScaler, fit_scaler
from cse_models.features.windows import n_windows


@dataclass(frozen=True)
class WalkForwardConfig:
    """n_folds test blocks of `test_rows` rows (None: n_rows // (n_folds + 1), so the first fold learns
    from about as many rows as one block holds, minus gaps); `val_fraction` of each fold's learning rows
    goes to early stopping; `purge` rows (None: seq_len) separate train | val | test; each segment holds
    at least `min_windows` windows."""

    n_folds: int = 3
    scheme: Literal["expanding", "sliding"] = "expanding"
    test_rows: int | None = None
    val_fraction: float = 0.2
    purge: int | None = None
    min_windows: int = 16

    def __post_init__(self) -> None:
        if self.n_folds < 1:
            raise ConfigError(f"n_folds must be ≥ 1, got {self.n_folds}")
        if self.scheme not in ("expanding", "sliding"):
            raise ConfigError(f"scheme must be 'expanding' or 'sliding', got {self.scheme!r}")
        if self.test_rows is not None and self.test_rows < 1:
            raise ConfigError(f"test_rows must be ≥ 1, got {self.test_rows}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.min_windows < 1:
            raise ConfigError(f"min_windows must be ≥ 1, got {self.min_windows}")

    def purge_rows(self, data_cfg: DataConfig) -> int:
        purge = data_cfg.seq_len if self.purge is None else self.purge
        if purge < data_cfg.seq_len:
            raise ConfigError(f"purge must be ≥ seq_len ({data_cfg.seq_len}) rows, got {purge}")
        return purge


@dataclass(frozen=True)
class Fold:
    index: int
    train: slice
    val: slice
    test: slice

    def segments(self) -> dict[str, slice]:
        return {"train": self.train, "val": self.val, "test": self.test}


def walk_forward_folds(n_rows: int, data_cfg: DataConfig, config: WalkForwardConfig) -> list[Fold]:
    """The folds' row slices, oldest fold first. Raises DataError saying how many rows are needed."""
    folds = _try_folds(n_rows, data_cfg, config)
    if folds is None:
        need = rows_needed(data_cfg, config)
        raise DataError(
            f"{n_rows} rows are too few for {config.n_folds} walk-forward folds with seq_len {data_cfg.seq_len}, "
            f"horizon {data_cfg.horizon} and ≥ {config.min_windows} windows per segment: need ≥ {need} rows"
        )
    return folds


def rows_needed(data_cfg: DataConfig, config: WalkForwardConfig) -> int:
    """The fewest rows from which on `walk_forward_folds` succeeds for every larger count too.

    A scan (fold arithmetic is cheap). Default test blocks of n // (n_folds + 1) rows make the first fold's
    learning rows wobble with period n_folds + 1, so that many consecutive successes are required."""
    segment = segment_rows(data_cfg, config)
    if config.test_rows is not None and config.test_rows < segment:
        raise ConfigError(f"test_rows {config.test_rows} is below the {segment} rows one test block needs")
    n, run = config.n_folds * segment, 0
    while run <= config.n_folds:
        run = run + 1 if _try_folds(n, data_cfg, config) is not None else 0
        n += 1
    return n - run


def segment_rows(data_cfg: DataConfig, config: WalkForwardConfig) -> int:
    """Rows holding `min_windows` windows of seq_len inputs + horizon."""
    return data_cfg.seq_len + data_cfg.horizon + config.min_windows - 1


def _try_folds(n_rows: int, data_cfg: DataConfig, config: WalkForwardConfig) -> list[Fold] | None:
    purge = config.purge_rows(data_cfg)
    segment = segment_rows(data_cfg, config)
    test_rows = config.test_rows or n_rows // (config.n_folds + 1)
    first_test = n_rows - config.n_folds * test_rows
    region = first_test - purge  # learning rows (train + purge + val) of the first fold
    if test_rows < segment or region < 1:
        return None
    folds = []
    for k in range(config.n_folds):
        test_start = first_test + k * test_rows
        end = test_start - purge
        start = 0 if config.scheme == "expanding" else end - region
        val_rows = max(segment, int((end - start) * config.val_fraction))
        train = slice(start, end - val_rows - purge)
        if train.stop - train.start < segment:
            return None
        folds.append(Fold(k, train, slice(end - val_rows, end), slice(test_start, test_start + test_rows)))
    return folds


@dataclass(frozen=True)
class FoldData:
    """One fold, ready for any forecaster: the segments scaled with the fold's own scaler."""

    fold: Fold
    scaler: FittedScaler
    segments: dict[str, SplitArrays]
    data_cfg: DataConfig

    @property
    def test(self) -> SplitArrays:
        return self.segments["test"]

    @property
    def prepared(self) -> PreparedSeries:
        """The fold as a series a member learns from (its train and val segments, config and scaler)."""
        return PreparedSeries(self.segments, self.data_cfg, self.scaler)

    def test_windows(self) -> int:
        return n_windows(self.test.close.shape[0], self.data_cfg.seq_len, self.data_cfg.horizon)


def build_fold_data(features: pl.DataFrame, fold: Fold, data_cfg: DataConfig) -> FoldData:
    """Fit the scaler on the fold's train rows only, then scale and target every segment with it
    (`build_segments`, the same code as the single split)."""
    names = feature_names_of(features, data_cfg)
    times = features.get_column("open_time").dt.epoch("ms").to_numpy()
    train = feature_matrix(features, names, fold.train)
    if not np.isfinite(train).all():
        row = fold.train.start + int(np.flatnonzero(~np.isfinite(train).all(axis=1))[0])
        raise DataError(f"feature table has a non-finite value at row {row}")
    scaler = fit_scaler(data_cfg.scaler, train, names, times[fold.train])
    segments = build_segments(features, scaler, data_cfg, fold.segments())
    return FoldData(fold=fold, scaler=scaler, segments=segments, data_cfg=data_cfg)
