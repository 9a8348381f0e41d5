"""Raw-feature windows of the test segment: what parity checks and smoke predictions run on."""

from __future__ import annotations

import numpy as np

from cse_models.config import DataConfig
from cse_models.features.dataset import SplitArrays
from cse_models.features.scaling import FittedScaler
from cse_models.features.windows import sliding_windows


def raw_test_windows(test: SplitArrays, scaler: FittedScaler, config: DataConfig, limit: int = 64) -> np.ndarray:
    """Unscaled windows `[≤limit, seq, f]` of the held-back test segment (the ONNX graph scales itself)."""
    scale = np.asarray(scaler.scale, np.float64)
    shift = np.asarray(scaler.min, np.float64)
    raw = (test.x.astype(np.float64) - shift) / scale
    return np.ascontiguousarray(sliding_windows(raw, config.seq_len, config.horizon)[:limit], dtype=np.float32)
