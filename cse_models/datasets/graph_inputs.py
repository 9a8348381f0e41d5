"""Raw-feature windows of the test segment: what parity checks and smoke predictions run on."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cse_models.config import DataConfig
from cse_models.datasets.segments import SplitArrays
from cse_models.features.windows import sliding_windows, target_rows
from cse_models.heads.layout import INPUT_NAME, LAST_CLOSE_INPUT, input_names


def raw_test_windows(test: SplitArrays, config: DataConfig, limit: int = 64) -> np.ndarray:
    """Unscaled windows `[≤limit, seq, f]` float32 of the held-back test segment (the graph scales itself)."""
    return np.ascontiguousarray(sliding_windows(test.raw, config.seq_len, config.horizon)[:limit], dtype=np.float32)


def last_closes(split: SplitArrays, config: DataConfig, limit: int | None = None) -> np.ndarray:
    """The close of each window's last row `[n, 1]` float32: the forecast graph's second input."""
    rows = target_rows(len(split.close), config.seq_len, config.horizon)[:limit] - config.horizon
    return split.close[rows].astype(np.float32)[:, None]


# graph input name → its values for the first `limit` windows of a segment (a task names its inputs)
INPUT_BUILDERS: dict[str, Callable[[SplitArrays, DataConfig, int], np.ndarray]] = {
    INPUT_NAME: raw_test_windows,
    LAST_CLOSE_INPUT: last_closes,
}


def graph_inputs(split: SplitArrays, config: DataConfig, limit: int = 64) -> dict[str, np.ndarray]:
    """The exported graph's inputs (`TaskSpec.graph_inputs`) for the first `limit` windows of a segment
    (parity checks, smoke runs)."""
    return {name: INPUT_BUILDERS[name](split, config, limit) for name in input_names(config.task)}
