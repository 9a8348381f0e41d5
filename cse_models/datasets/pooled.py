"""Many symbols' segments as one segment a global model learns from: their rows stacked, one target per
window start, and a weight per window.

Training reads windows by their start row in one `[rows, f]` matrix, so the symbols' rows are stacked and
every window start keeps its own target. The `seq_len + horizon − 1` windows that would start in one symbol
and end in the next get weight 0: no step, loss, calibration or score ever reads them
(`SplitArrays.valid_windows`). The other windows are weighted by symbol (`SYMBOL_WEIGHTINGS`).

The default is `rows` — every window alike — because that is what measured best: over the five shared
series (last 2 years, 3 calendar folds, global LSTM + LightGBM; `benchmarks/bench_global.py --full`), giving
the eight-month DOT more weight (rows → sqrt → equal) lowered its volatility skill against HAR (+10.3 →
+10.0 → +9.2 points) and its direction skill (+1.11 → +0.88 → +0.47 %); SOL's volatility moved by ±0.2
points, and price both ways (DOT +0.73 → +0.69 → +0.66 %, SOL +0.30 → +0.31 → +0.42 %); the long series
lost nothing either way. The long series do not drown the short ones here; they teach them. `sqrt` and
`equal` stay for panels where they might (`--weighting`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import polars as pl

from cse_models.config import DataConfig
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import (
    SPLIT_FIELDS,
    SplitArrays,
    build_segments,
    epoch_ms,
    feature_matrix,
    feature_names_of,
    window_count,
)
from cse_models.errors import DataError
from cse_models.features.scaling import FittedScaler, fit_scaler
from cse_models.registry import Registry

# windows of each symbol → the weight of each of its windows; the weights of all windows average 1
Weighting = Callable[[np.ndarray], np.ndarray]
SYMBOL_WEIGHTINGS: Registry[Weighting] = Registry("symbol weighting")
SYMBOL_WEIGHTINGS.add("rows", lambda counts: np.ones(len(counts)))  # every window alike (the default)
SYMBOL_WEIGHTINGS.add("equal", lambda counts: 1.0 / counts)  # every symbol the same total weight
SYMBOL_WEIGHTINGS.add("sqrt", lambda counts: 1.0 / np.sqrt(counts))  # between the two: total ∝ √windows


def symbol_weights(counts: np.ndarray, weighting: str) -> np.ndarray:
    """The per-window weight of each symbol, scaled so that the weights of all windows average 1 (the
    learning rate means the same thing whatever the weighting)."""
    counts = np.asarray(counts, dtype=np.float64)
    per_window = SYMBOL_WEIGHTINGS.get(weighting)(counts)
    return per_window * counts.sum() / (per_window * counts).sum()


def pool_segments(segments: Mapping[str, SplitArrays], config: DataConfig, weighting: str = "rows") -> SplitArrays:
    """The symbols' segments (each with ≥ 1 window, all scaled by one scaler) stacked in the mapping's order:
    rows concatenated, `y` and `weights` indexed by window start (0 for a window across two symbols)."""
    if not segments:
        raise DataError("a pooled segment needs at least one symbol's segment")
    counts = np.array([window_count(split, config) for split in segments.values()])
    empty = [symbol for symbol, count in zip(segments, counts, strict=True) if count < 1]
    if empty:
        raise DataError(f"no window of {config.seq_len} rows + {config.horizon} ahead in the segment of {empty}")
    rows = {field: np.concatenate([getattr(s, field) for s in segments.values()]) for field in SPLIT_FIELDS[:-1]}
    first = next(iter(segments.values())).y
    y = np.zeros((rows["x"].shape[0], *first.shape[1:]), dtype=first.dtype)
    weights = np.zeros(rows["x"].shape[0], dtype=np.float32)
    start = 0
    for split, count, weight in zip(segments.values(), counts, symbol_weights(counts, weighting), strict=True):
        y[start : start + count] = split.y[:count]
        weights[start : start + count] = weight
        start += split.x.shape[0]
    return SplitArrays(**rows, y=y, weights=weights)


def pooled_scaler(
    features: Mapping[str, pl.DataFrame], train_rows: Mapping[str, slice], config: DataConfig
) -> FittedScaler:
    """The configured scaler fit on every learning symbol's train rows together — one scaler, so the global
    graph is one self-contained graph (the scaler folded in) that serves symbols it never saw."""
    names = feature_names_of(next(iter(features.values())), config)
    values = np.concatenate([feature_matrix(features[s], names, rows) for s, rows in train_rows.items()])
    times = np.concatenate([epoch_ms(features[s].get_column("open_time"))[rows] for s, rows in train_rows.items()])
    first_last = np.array([times.min(), times.max()])
    return fit_scaler(config.scaler, values, names, first_last)


def pooled_series(
    features: Mapping[str, pl.DataFrame],
    segments: Mapping[str, Mapping[str, slice]],
    config: DataConfig,
    weighting: str = "rows",
) -> PreparedSeries:
    """What a global member learns from: each learning symbol's train and val rows (`segments`: symbol →
    {"train": rows, "val": rows} of its feature table), scaled by `pooled_scaler` and pooled."""
    if not segments:
        raise DataError("no symbol to learn from: every symbol was excluded or lacks rows before the cut")
    scaler = pooled_scaler(features, {s: rows["train"] for s, rows in segments.items()}, config)
    built = {s: build_segments(features[s], scaler, config, dict(rows)) for s, rows in segments.items()}
    pooled = {
        name: pool_segments({s: parts[name] for s, parts in built.items()}, config, weighting)
        for name in ("train", "val")
    }
    return PreparedSeries(pooled, config, scaler)
