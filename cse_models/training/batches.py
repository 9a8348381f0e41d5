"""How an epoch is cut into steps: the replayable window order of (seed, epoch), fixed-shape batches padded
with weight-0 windows, and the largest batch size that fits the device (`probe_batch_size`)."""

from __future__ import annotations

import logging
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from cse_models.config import DataConfig
from cse_models.datasets.segments import SplitArrays, window_count
from cse_models.errors import DataError
from cse_models.training.config import TrainingConfig
from cse_models.training.schedules import build_optimizer
from cse_models.training.sharding import DataParallel, data_parallel
from cse_models.training.step import train_step

log = logging.getLogger(__name__)


def epoch_order(cfg: TrainingConfig, count: int, epoch: int) -> np.ndarray:
    """The epoch's window order: a permutation drawn from (seed, epoch), so any epoch can be replayed."""
    return np.random.default_rng([cfg.seed, epoch]).permutation(count) if cfg.shuffle else np.arange(count)


def epoch_batches(
    order: np.ndarray, batch_size: int, window_weights: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(starts, weights) per step: each window's weight (`window_weights[start]`, 1 when None); the last
    batch is padded with weight-0 windows from the epoch's start, so every step has the same shape (one
    compilation) and splits evenly over the devices. BatchNorm statistics see the padding windows; the
    loss does not."""
    batches = []
    for i in range(0, len(order), batch_size):
        chunk = order[i : i + batch_size]
        weights = np.zeros(batch_size, np.float32)
        weights[: len(chunk)] = 1.0 if window_weights is None else window_weights[chunk]
        batches.append((np.concatenate([chunk, np.resize(order, batch_size - len(chunk))]), weights))
    return batches


def probe_batch_size(
    model: nnx.Module,
    train: SplitArrays,
    data_cfg: DataConfig,
    cfg: TrainingConfig,
    cap: int,
    parallel: DataParallel | None = None,
) -> int:
    """The largest power of two ≤ `cap` (and a multiple of the device count) whose train step runs without
    running out of device memory, tried from the top on a copy of the model."""
    parallel = parallel or data_parallel()
    sizes = [2**k for k in range(int(math.log2(cap)), -1, -1) if 2**k % parallel.device_count == 0]
    if not sizes:
        parallel.check_batch(cap, "auto_batch_cap")
    x_all, y_all = parallel.replicate(jnp.asarray(train.x)), parallel.replicate(jnp.asarray(train.y))
    count = window_count(train, data_cfg)
    for size in sizes:
        probe = nnx.clone(model)
        optimizer = nnx.Optimizer(probe, build_optimizer(cfg, 1), wrt=nnx.Param)
        starts = parallel.shard_batch(np.resize(np.arange(count), size))
        try:
            jax.block_until_ready(train_step(probe, optimizer, x_all, y_all, starts, data_cfg.seq_len, data_cfg.task))
        except jax.errors.JaxRuntimeError as exc:
            if "RESOURCE_EXHAUSTED" not in str(exc) and "out of memory" not in str(exc).lower():
                raise
            log.info("batch %d does not fit on the device: %s", size, exc)
            continue
        return size
    raise DataError(f"no batch size ≤ {cap} fits in device memory")
