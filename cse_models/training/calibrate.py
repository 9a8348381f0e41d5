"""After fitting: calibrate the forecast heads on the validation slice, and forecast a segment through the
exact function that is exported (`heads.graph.serving_function`).

Every member kind calls these — the graph's training run (`run.train_model`), each walk-forward fold
(`evaluation.trained`) and the classical members (`cse_models.classical`) — so the λ, direction weight
and conformal quantile that a fold is scored with are found the same way as the ones that are published,
whatever produced the raw outputs. `calibrate_outputs` works on raw outputs `[n, 5]` and needs no JAX;
JAX is imported only by the functions that run a Flax module.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from cse_models.config import DataConfig
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import SplitArrays
from cse_models.features.scaling import FittedScaler
from cse_models.heads.calibration import HeadCalibration, conformal_halfwidth, fit_direction_weight, fit_shrink
from cse_models.heads.targets import label_frequencies

if TYPE_CHECKING:
    from flax import nnx


def calibrate_outputs(out: np.ndarray, data: PreparedSeries) -> HeadCalibration:
    """Raw outputs of every validation window `[n, 5]` (ẑ, range ratio, 3 class logits) → the calibration:
    λ minimising the validation price MAE; the direction weight α minimising the validation Brier score
    against the train class frequencies; then the conformal half-width, in trailing σ·√h, of the shrunk
    forecast's residuals over the latest `calibration_windows` validation windows."""
    data_cfg = data.config
    valid = data.val.valid_windows(data_cfg)
    out = np.asarray(out, dtype=np.float64)[valid]
    z_hat = out[:, 0]
    t = data.val.valid_targets(data_cfg, data.scaler.feature_names)
    prior = label_frequencies(data.train.y[data.train.valid_windows(data_cfg)])
    logits = out[:, 2:5] - out[:, 2:5].max(axis=1, keepdims=True)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    base = HeadCalibration(
        interval_level=data_cfg.interval_level,
        class_prior=tuple(float(p) for p in prior),
        direction_weight=fit_direction_weight(probabilities, t.label, prior),
    )
    shrunk = replace(base, shrink=fit_shrink(z_hat, t.log_return, t.sigma, t.last_close, base.clip_sigmas))
    recent = latest_windows(data.val.issue_times(data_cfg)[valid], data_cfg.calibration_windows)
    scores = np.abs(t.log_return - shrunk.returns(z_hat, t.sigma))[recent] / t.sigma[recent]
    return replace(
        shrunk,
        interval_scale=conformal_halfwidth(scores, data_cfg.interval_level),
        calibration_points=int(scores.size),
    )


def latest_windows(issue_times: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` windows issued last (a stable sort: for one series, the last `count`
    windows; for a pooled panel, the latest hours of every symbol together)."""
    return np.sort(np.argsort(issue_times, kind="stable")[-count:])


def calibrate_heads(model: nnx.Module, data: PreparedSeries) -> HeadCalibration:
    """A Flax model's raw outputs on every validation window, calibrated by `calibrate_outputs`."""
    from cse_models.training.predict import predict_windows

    return calibrate_outputs(predict_windows(model, data.val, data.config), data)


def predict_heads(
    model: nnx.Module,
    split: SplitArrays,
    data_cfg: DataConfig,
    scaler: FittedScaler,
    calibration: HeadCalibration | None = None,
    batch_size: int = 1024,
) -> dict[str, np.ndarray]:
    """Every window of a segment through the serving function → head forecasts (`outputs_by_head`)."""
    import jax

    from cse_models.datasets.graph_inputs import graph_inputs
    from cse_models.features.windows import n_windows
    from cse_models.heads.graph import serving_function
    from cse_models.heads.layout import input_names, outputs_by_head

    model.eval()
    fn = jax.jit(serving_function(model, scaler, data_cfg, calibration))
    count = n_windows(split.close.shape[0], data_cfg.seq_len, data_cfg.horizon)
    inputs = graph_inputs(split, data_cfg, limit=count)
    names = input_names(data_cfg.task)
    chunks = []
    for start in range(0, count, batch_size):
        batch = [inputs[name][start : start + batch_size] for name in names]
        chunks.append([np.asarray(o) for o in fn(*batch)])
    outputs = [np.concatenate([chunk[i] for chunk in chunks]) for i in range(len(chunks[0]))]
    return outputs_by_head(data_cfg.task, outputs)
