"""A model's outputs for every window of a split (dropout off), and its validation loss."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from cse_models.config import DataConfig
from cse_models.datasets.segments import SplitArrays, window_count
from cse_models.training.losses import TASK_LOSSES, per_window_losses
from cse_models.training.step import gather_windows


@nnx.jit(static_argnames=("seq_len",))
def predict_step(model, x_all, starts, seq_len: int):
    return model(gather_windows(x_all, starts, seq_len))


def predict_windows(model: nnx.Module, split: SplitArrays, data_cfg: DataConfig, batch_size: int = 1024) -> np.ndarray:
    """Model outputs `[n_windows, n_outputs]` for every window of a split (dropout off)."""
    model.eval()
    x_all = jnp.asarray(split.x)
    count = window_count(split, data_cfg)
    outs = [
        np.asarray(predict_step(model, x_all, jnp.arange(i, min(i + batch_size, count)), data_cfg.seq_len))
        for i in range(0, count, batch_size)
    ]
    return np.concatenate(outs)


def evaluate_loss(model: nnx.Module, split: SplitArrays, data_cfg: DataConfig, batch_size: int) -> float:
    """The task's loss over the split's windows; a pooled panel's weighted mean over its valid windows."""
    out = predict_windows(model, split, data_cfg, batch_size)
    if split.weights is None:
        return float(TASK_LOSSES.get(data_cfg.task)(jnp.asarray(out), jnp.asarray(split.y)))
    valid = split.valid_windows(data_cfg)
    losses = np.asarray(per_window_losses(data_cfg.task, jnp.asarray(out[valid]), jnp.asarray(split.y[valid])))
    weights = split.window_weights(data_cfg)[valid]
    return float(np.sum(losses * weights) / np.sum(weights))
