"""The training loop: one jitted step, windows gathered on device, early stopping on validation loss.

The scaled feature segment `[rows, f]` is put on the device once per split; a batch is a vector of
window start rows, and the `[batch, seq, f]` windows are gathered inside the jitted step — no Python-side
copy of windows per batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from cse_models.config import DataConfig
from cse_models.errors import DataError
from cse_models.features.dataset import SplitArrays, window_count
from cse_models.models.registry import MODEL_STATE
from cse_models.registry import Registry
from cse_models.training.checkpoint import BestCheckpoints
from cse_models.training.config import TrainingConfig

log = logging.getLogger(__name__)

Loss = Callable[[jax.Array, jax.Array], jax.Array]
LOSSES: Registry[Loss] = Registry("loss")
LOSSES.add("regression", lambda out, y: jnp.mean((out[:, 0] - y) ** 2))
LOSSES.add("classification", lambda out, y: optax.softmax_cross_entropy_with_integer_labels(out, y).mean())


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    train_loss: float
    val_loss: float
    seconds: float
    samples_per_s: float


@dataclass
class FitResult:
    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = float("inf")
    stopped_early: bool = False

    @property
    def epochs_run(self) -> int:
        return len(self.history)


def gather_windows(x_all: jax.Array, starts: jax.Array, seq_len: int) -> jax.Array:
    """[rows, f] and window starts [B] → windows [B, seq_len, f]."""
    return x_all[starts[:, None] + jnp.arange(seq_len)]


@nnx.jit(static_argnames=("seq_len", "task"))
def train_step(model, optimizer, x_all, y_all, starts, seq_len: int, task: str):
    def loss_fn(model):
        return LOSSES.get(task)(model(gather_windows(x_all, starts, seq_len)), y_all[starts])

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


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
    out = predict_windows(model, split, data_cfg, batch_size)
    return float(LOSSES.get(data_cfg.task)(jnp.asarray(out), jnp.asarray(split.y)))


def fit(
    model: nnx.Module,
    train: SplitArrays,
    val: SplitArrays,
    data_cfg: DataConfig,
    cfg: TrainingConfig,
    *,
    checkpoints: BestCheckpoints | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> FitResult:
    """Train with Adam until `max_epochs` or `patience` epochs without validation improvement.

    The best epoch's parameters are checkpointed (when `checkpoints` is given) and restored at the end.
    """
    count = window_count(train, data_cfg)
    if count < 1 or window_count(val, data_cfg) < 1:
        raise DataError("training needs at least one train and one validation window")
    optimizer = nnx.Optimizer(model, optax.adam(cfg.learning_rate), wrt=nnx.Param)
    x_all, y_all = jnp.asarray(train.x), jnp.asarray(train.y)
    order_rng = np.random.default_rng(cfg.seed)
    result = FitResult()
    best_state = None
    for epoch in range(cfg.max_epochs):
        model.train()
        starts = order_rng.permutation(count) if cfg.shuffle else np.arange(count)
        started = time.perf_counter()
        losses = [
            train_step(
                model,
                optimizer,
                x_all,
                y_all,
                jnp.asarray(starts[i : i + cfg.batch_size]),
                data_cfg.seq_len,
                data_cfg.task,
            )
            for i in range(0, count, cfg.batch_size)
        ]
        train_loss = float(jnp.mean(jnp.stack(losses)))
        seconds = time.perf_counter() - started
        val_loss = evaluate_loss(model, val, data_cfg, cfg.eval_batch_size)
        entry = EpochLog(epoch, train_loss, val_loss, seconds, count / seconds)
        result.history.append(entry)
        log.info("epoch %d train %.6f val %.6f (%.1f samples/s)", epoch, train_loss, val_loss, entry.samples_per_s)
        if on_epoch is not None:
            on_epoch(entry)
        if not np.isfinite(train_loss):
            raise DataError(f"training diverged: loss is {train_loss} at epoch {epoch}")
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_epoch = val_loss, epoch
            best_state = jax.tree.map(jnp.copy, nnx.state(model, MODEL_STATE))
            if checkpoints is not None:
                checkpoints.save(epoch, model, {"val_loss": val_loss, "train_loss": train_loss})
        elif epoch - result.best_epoch >= cfg.patience:
            result.stopped_early = True
            break
    nnx.update(model, best_state)
    model.eval()
    return result
