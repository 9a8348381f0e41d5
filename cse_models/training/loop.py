"""The training loop: epochs of jitted steps (`step.py`) over batches (`batches.py`), early stopping on
validation loss (`predict.py`), resumable state and the best checkpoint.

The scaled feature segment `[rows, f]` is put on the devices once per split (replicated); a batch is a
vector of window start rows sharded on the `data` mesh axis (`sharding.py`), and the `[batch, seq, f]`
windows are gathered inside the jitted step — no Python-side copy of windows per batch, and GSPMD
splits the step over the devices.

Everything random is a function of the seed and a position, never of a stateful generator: the epoch's
data order of (seed, epoch), the dropout and augmentation keys of (seed, step). So a run resumed from
its latest checkpoint (`state_dir`) replays exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from cse_models.config import DataConfig
from cse_models.datasets.segments import SplitArrays
from cse_models.errors import DataError
from cse_models.models.architectures import MODEL_STATE
from cse_models.training.allocator import retain_freed_buffers
from cse_models.training.batches import epoch_batches, epoch_order, probe_batch_size
from cse_models.training.checkpoint import BestCheckpoints, TrainStateCheckpoints
from cse_models.training.config import TrainingConfig
from cse_models.training.history import EpochLog, FitResult
from cse_models.training.predict import evaluate_loss
from cse_models.training.resume import ResumableRun, run_fingerprint
from cse_models.training.schedules import build_optimizer, current_learning_rate
from cse_models.training.sharding import DataParallel, data_parallel
from cse_models.training.step import SplitTrainStep, StepOptions
from cse_models.training.tensorboard import TensorBoardLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Feed:
    """The training split on the devices and how it is cut into steps: the start rows of the windows it
    learns from (`SplitArrays.valid_windows`) and the weight of every window start."""

    parallel: DataParallel
    x_all: jax.Array
    y_all: jax.Array
    starts: np.ndarray
    weights: np.ndarray
    batch_size: int

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.count / self.batch_size)


def fit(
    model: nnx.Module,
    train: SplitArrays,
    val: SplitArrays,
    data_cfg: DataConfig,
    cfg: TrainingConfig,
    *,
    checkpoints: BestCheckpoints | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
    state_dir: str | Path | None = None,
    devices: int | None = None,
    log_dir: str | Path | None = None,
) -> FitResult:
    """Train with Adam(W) until `max_epochs` or `patience` epochs without validation improvement.

    The best epoch's parameters are checkpointed (when `checkpoints` is given) and restored at the end.
    `state_dir`: save the resumable training state there every epoch (and every `checkpoint_every_steps`)
    and resume from the latest one found. `devices`: data-parallel over the first N devices (default all).
    `log_dir`: TensorBoard event files.
    """
    starts = train.valid_windows(data_cfg)
    if starts.size < 1 or val.valid_windows(data_cfg).size < 1:
        raise DataError("training needs at least one train and one validation window")
    retain_freed_buffers()
    parallel = data_parallel(devices)
    batch_size = cfg.batch_size
    if cfg.auto_batch_cap is not None:
        batch_size = probe_batch_size(model, train, data_cfg, cfg, cfg.auto_batch_cap, parallel)
        log.info("adaptive batch size: %d", batch_size)
    parallel.check_batch(batch_size, "auto_batch_cap" if cfg.auto_batch_cap is not None else "batch_size")
    x_all, y_all = parallel.replicate(jnp.asarray(train.x)), parallel.replicate(jnp.asarray(train.y))
    feed = _Feed(parallel, x_all, y_all, starts, train.window_weights(data_cfg), batch_size)
    fingerprint = run_fingerprint(model, train, val, data_cfg, cfg) if state_dir is not None else ""
    optimizer = nnx.Optimizer(model, build_optimizer(cfg, feed.steps_per_epoch * cfg.max_epochs), wrt=nnx.Param)
    nnx.update(model, parallel.replicate(nnx.state(model)))
    nnx.update(optimizer, parallel.replicate(nnx.state(optimizer)))
    store = TrainStateCheckpoints(state_dir) if state_dir is not None else None
    tensorboard = TensorBoardLog(log_dir) if log_dir is not None else None
    run = ResumableRun(model, optimizer, cfg, fingerprint, store, tensorboard)
    try:
        run.resume()
        _train_epochs(run, feed, val, data_cfg, checkpoints, on_epoch)
    finally:
        if store is not None:
            store.close()
        if tensorboard is not None:
            tensorboard.close()
    if run.best_state is None:
        raise DataError("validation loss was never finite; no parameters to keep")
    nnx.update(model, run.best_state)
    model.eval()
    return run.result


def _train_epochs(
    run: ResumableRun,
    feed: _Feed,
    val: SplitArrays,
    data_cfg: DataConfig,
    checkpoints: BestCheckpoints | None,
    on_epoch: Callable[[EpochLog], None] | None,
) -> None:
    cfg, model, optimizer, result, position = run.cfg, run.model, run.optimizer, run.result, run.position
    parallel, steps_per_epoch = feed.parallel, feed.steps_per_epoch
    options = StepOptions.from_config(cfg)
    every = cfg.checkpoint_every_steps
    while position.epoch < cfg.max_epochs and not result.stopped_early:
        epoch = position.epoch
        model.train()
        batches = epoch_batches(feed.starts[epoch_order(cfg, feed.count, epoch)], feed.batch_size, feed.weights)
        started, first_batch = time.perf_counter(), position.batch
        step_fn = SplitTrainStep(model, optimizer)
        try:
            for index in range(position.batch, steps_per_epoch):
                starts, weights = batches[index]
                loss = step_fn(
                    feed.x_all,
                    feed.y_all,
                    parallel.shard_batch(starts),
                    data_cfg.seq_len,
                    data_cfg.task,
                    parallel.shard_batch(weights),
                    position.step,
                    cfg.seed,
                    options=options,
                )
                run.pending.append((position.step, loss))
                position.step, position.batch = position.step + 1, index + 1
                if every is not None and position.step % every == 0 and index + 1 < steps_per_epoch:
                    step_fn.sync()
                    run.save()
        finally:
            step_fn.sync()
        run.check_finite()
        seconds = time.perf_counter() - started
        train_loss = float(np.mean(np.asarray(position.epoch_losses, np.float32)))
        val_loss = evaluate_loss(model, val, data_cfg, cfg.eval_batch_size)
        samples = min(feed.count, (steps_per_epoch - first_batch) * feed.batch_size)
        throughput = samples / seconds
        entry = EpochLog(epoch, train_loss, val_loss, seconds, throughput)
        result.history.append(entry)
        lr = current_learning_rate(optimizer)
        log.info("epoch %d train %.6f val %.6f lr %.2e (%.1f samples/s)", epoch, train_loss, val_loss, lr, throughput)
        if run.tensorboard is not None:
            scalars = {"loss/train": train_loss, "loss/val": val_loss, "lr": lr, "throughput/samples_per_s": throughput}
            run.tensorboard.scalars(position.step, scalars)
        if on_epoch is not None:
            on_epoch(entry)
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_epoch = val_loss, epoch
            run.best_state = jax.tree.map(jnp.copy, nnx.state(model, MODEL_STATE))
            if checkpoints is not None:
                checkpoints.save(epoch, model, {"val_loss": val_loss, "train_loss": train_loss})
        elif epoch - result.best_epoch >= cfg.patience:
            result.stopped_early = True
        if cfg.lr_schedule == "plateau":
            run.plateau.observe(optimizer, val_loss)
        position.epoch, position.batch, position.epoch_losses = epoch + 1, 0, []
        position.plateau = run.plateau.state()
        run.save()
