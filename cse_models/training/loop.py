"""The training loop: one jitted step, windows gathered on device, early stopping on validation loss.

The scaled feature segment `[rows, f]` is put on the devices once per split (replicated); a batch is a
vector of window start rows sharded on the `data` mesh axis (`sharding.py`), and the `[batch, seq, f]`
windows are gathered inside the jitted step — no Python-side copy of windows per batch, and GSPMD
splits the step over the devices.

Everything random is a function of the seed and a position, never of a stateful generator: the epoch's
data order of (seed, epoch), the dropout and augmentation keys of (seed, step). So a run resumed from
its latest checkpoint (`state_dir`) replays exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from cse_models.config import DataConfig
from cse_models.datasets.segments import SplitArrays, window_count
from cse_models.errors import DataError
from cse_models.heads.graph import forecast_loss
from cse_models.models.registry import MODEL_STATE
from cse_models.registry import Registry
from cse_models.training.augment import augment_windows, augmentation_key
from cse_models.training.checkpoint import BestCheckpoints, TrainStateCheckpoints
from cse_models.training.config import TrainingConfig
from cse_models.training.history import EpochLog, FitResult
from cse_models.training.precision import cast_floating, compute_dtype
from cse_models.training.resume import ResumableRun, run_fingerprint
from cse_models.training.schedules import build_optimizer, current_learning_rate
from cse_models.training.sharding import DataParallel, data_parallel
from cse_models.training.tensorboard import TensorBoardLog

log = logging.getLogger(__name__)

Loss = Callable[[jax.Array, jax.Array], jax.Array]
LOSSES: Registry[Loss] = Registry("loss")
LOSSES.add("regression", lambda out, y: jnp.mean((out[:, 0] - y) ** 2))
LOSSES.add("classification", lambda out, y: optax.softmax_cross_entropy_with_integer_labels(out, y).mean())
LOSSES.add("forecast", forecast_loss)

DROPOUT_STREAM = 0  # folded into the seed; augmentation uses `augment.AUGMENT_STREAM`

_GLIBC_M_TRIM_THRESHOLD, _GLIBC_M_MMAP_THRESHOLD = -1, -3
_RETAINED_BYTES = 1 << 30
_allocator_tuned = False


def retain_freed_buffers() -> bool:
    """Keep the step's freed buffers in the process heap instead of handing them back to the OS (glibc only).

    Why: XLA on CPU allocates every intermediate of the step afresh — at seq 64 the recurrent layers'
    residuals are 2–8 MB arrays. glibc serves such sizes with `mmap` and unmaps them on free, so every step
    page-faults its working set in again: in the profile a zero-fill of one 8 MB buffer cost 4–6 ms, more
    than the 64 recurrent GEMMs of a layer. Raising the mmap and trim thresholds once makes the next step
    reuse the same pages (seq 64: 60 → 44 ms of kernel time per step). The process keeps its peak heap;
    that is the point. Idempotent; returns whether the allocator was tuned.
    """
    global _allocator_tuned
    if _allocator_tuned or not sys.platform.startswith("linux"):
        return _allocator_tuned
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None)
    if mallopt is None:  # not glibc (musl has no mallopt)
        return False
    _allocator_tuned = bool(
        mallopt(_GLIBC_M_MMAP_THRESHOLD, _RETAINED_BYTES) and mallopt(_GLIBC_M_TRIM_THRESHOLD, _RETAINED_BYTES)
    )
    return _allocator_tuned


@dataclass(frozen=True)
class StepOptions:
    """The static (compile-time) choices of the train step, taken from a `TrainingConfig`."""

    precision: str = "fp32"
    remat: bool = False
    jitter_std: float = 0.0
    scaling_std: float = 0.0
    window_slice: float = 1.0

    @classmethod
    def from_config(cls, cfg: TrainingConfig) -> StepOptions:
        return cls(cfg.precision, cfg.remat, cfg.jitter_std, cfg.scaling_std, cfg.window_slice)

    @property
    def augments(self) -> bool:
        return self.jitter_std > 0 or self.scaling_std > 0 or self.window_slice < 1.0


def gather_windows(x_all: jax.Array, starts: jax.Array, seq_len: int) -> jax.Array:
    """[rows, f] and window starts [B] → windows [B, seq_len, f]."""
    return x_all[starts[:, None] + jnp.arange(seq_len)]


def dropout_key(seed: int | jax.Array, step: int | jax.Array) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), DROPOUT_STREAM), step)


def reseed_streams(model: nnx.Module, key: jax.Array) -> None:
    """Give every RNG stream of the model a key derived from `key` (one per stream, in graph order)."""
    streams = [node for _, node in nnx.iter_graph(model) if isinstance(node, nnx.RngStream)]
    for index, stream in enumerate(streams):
        stream.key.set_value(jax.random.fold_in(key, index))
        stream.count.set_value(jnp.zeros(stream.count.shape, jnp.uint32))


def per_window_losses(task: str, out: jax.Array, y: jax.Array) -> jax.Array:
    """The registered loss of each window alone: `[B]`."""
    return jax.vmap(lambda o, t: LOSSES.get(task)(o[None], t[None]))(out, y)


def batch_loss(
    params: nnx.State,
    graphdef: nnx.GraphDef,
    rest: nnx.State,
    windows: jax.Array,
    targets: jax.Array,
    weights: jax.Array,
    task: str,
    options: StepOptions = StepOptions(),
) -> tuple[jax.Array, nnx.State]:
    """Weighted mean loss (fp32) of a batch and the updated BatchNorm statistics — the function `train_step`
    differentiates with respect to `params` (fp32 masters, cast to the compute dtype here)."""
    dtype = compute_dtype(options.precision)

    def forward(params, windows):
        model = nnx.merge(graphdef, cast_floating(params, dtype), rest, copy=True)
        out = model(windows.astype(dtype))
        return out.astype(jnp.float32), nnx.state(model, nnx.BatchStat)

    out, stats = (jax.checkpoint(forward) if options.remat else forward)(params, windows)
    loss = jnp.sum(per_window_losses(task, out, targets) * weights) / jnp.sum(weights)
    return loss, stats


def _train_step(
    model,
    optimizer,
    x_all,
    y_all,
    starts,
    seq_len: int,
    task: str,
    weights=None,
    step=0,
    seed=0,
    options: StepOptions = StepOptions(),
):
    """One update on the windows starting at `starts` [B]; `weights` [B] (0 = padding) default to ones."""
    weights = jnp.ones(starts.shape, jnp.float32) if weights is None else weights
    windows = gather_windows(x_all, starts, seq_len)
    if options.augments:
        windows = augment_windows(
            windows,
            augmentation_key(seed, step),
            jitter_std=options.jitter_std,
            scaling_std=options.scaling_std,
            window_slice=options.window_slice,
        )
    reseed_streams(model, dropout_key(seed, step))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    grad_fn = jax.value_and_grad(batch_loss, has_aux=True)
    (loss, stats), grads = grad_fn(params, graphdef, rest, windows, y_all[starts], weights, task, options)
    old_stats = nnx.state(model, nnx.BatchStat)
    nnx.update(model, jax.tree.map(lambda new, old: new.astype(old.dtype), stats, old_stats))
    optimizer.update(model, grads)
    return loss


# XLA on CPU puts all of a step's temporaries in one heap allocation; above 64 MB (seq 64: an LSTM's
# residuals, windows and gradients) glibc serves it from a fresh mmap on every call, from XLA's worker
# threads, whatever `retain_freed_buffers` says, and the step page-faults its whole working set again
# (zero-filling one 8 MB buffer cost 10–14 ms). Heaps of at most 16 MB are recycled.
STEP_COMPILER_OPTIONS = {"xla_multiheap_size_constraint_per_heap": 16 << 20}


@partial(jax.jit, static_argnames=("graphdef", "seq_len", "task", "options"), compiler_options=STEP_COMPILER_OPTIONS)
def _train_step_on_state(graphdef, state, x_all, y_all, starts, seq_len, task, weights, step, seed, options):
    model, optimizer = nnx.merge(graphdef, state)
    loss = _train_step(model, optimizer, x_all, y_all, starts, seq_len, task, weights, step, seed, options)
    return nnx.state((model, optimizer)), loss


def train_step(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    x_all: jax.Array,
    y_all: jax.Array,
    starts: jax.Array,
    seq_len: int,
    task: str,
    weights: jax.Array | None = None,
    step: int | jax.Array = 0,
    seed: int | jax.Array = 0,
    options: StepOptions = StepOptions(),
) -> jax.Array:
    """One jitted update of `model` and `optimizer` (in place) on the windows starting at `starts` [B];
    `weights` [B] (0 = padding) default to ones. Returns the loss. A loop of many steps should use
    `SplitTrainStep`, which does not split and update the objects on every call."""
    graphdef, state = nnx.split((model, optimizer))
    state, loss = _train_step_on_state(
        graphdef, state, x_all, y_all, starts, seq_len, task, weights, step, seed, options
    )
    nnx.update((model, optimizer), state)
    return loss


class SplitTrainStep:
    """`train_step` for a loop of many steps: the model and optimizer are split into a graph and a state once,
    and each step is a plain `jax.jit` call on the state.

    Why: `nnx.jit` walks both object graphs on every call; on this 2-core CPU that Python work (~1–2 ms)
    competes with XLA's threads and cost 5–10 % of an LSTM step at seq 24. The objects see the new state
    only at `sync()` — call it before anything reads them (evaluation, checkpoints). Same computation,
    same keys and numbers as `train_step`.
    """

    def __init__(self, model: nnx.Module, optimizer: nnx.Optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        self.graphdef, self.state = nnx.split((model, optimizer))

    def __call__(self, x_all, y_all, starts, seq_len: int, task: str, weights, step, seed, options: StepOptions):
        self.state, loss = _train_step_on_state(
            self.graphdef, self.state, x_all, y_all, starts, seq_len, task, weights, step, seed, options
        )
        return loss

    def sync(self) -> None:
        nnx.update((self.model, self.optimizer), self.state)


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


def epoch_order(cfg: TrainingConfig, count: int, epoch: int) -> np.ndarray:
    """The epoch's window order: a permutation drawn from (seed, epoch), so any epoch can be replayed."""
    return np.random.default_rng([cfg.seed, epoch]).permutation(count) if cfg.shuffle else np.arange(count)


def epoch_batches(order: np.ndarray, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(starts, weights) per step; the last batch is padded with weight-0 windows from the epoch's start,
    so every step has the same shape (one compilation) and splits evenly over the devices. BatchNorm
    statistics see the padding windows; the loss does not."""
    batches = []
    for i in range(0, len(order), batch_size):
        chunk = order[i : i + batch_size]
        weights = np.zeros(batch_size, np.float32)
        weights[: len(chunk)] = 1.0
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


@dataclass(frozen=True)
class _Feed:
    """The training split on the devices and how it is cut into steps."""

    parallel: DataParallel
    x_all: jax.Array
    y_all: jax.Array
    count: int
    batch_size: int

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
    count = window_count(train, data_cfg)
    if count < 1 or window_count(val, data_cfg) < 1:
        raise DataError("training needs at least one train and one validation window")
    retain_freed_buffers()
    parallel = data_parallel(devices)
    batch_size = cfg.batch_size
    if cfg.auto_batch_cap is not None:
        batch_size = probe_batch_size(model, train, data_cfg, cfg, cfg.auto_batch_cap, parallel)
        log.info("adaptive batch size: %d", batch_size)
    parallel.check_batch(batch_size, "auto_batch_cap" if cfg.auto_batch_cap is not None else "batch_size")
    feed = _Feed(
        parallel, parallel.replicate(jnp.asarray(train.x)), parallel.replicate(jnp.asarray(train.y)), count, batch_size
    )
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
        batches = epoch_batches(epoch_order(cfg, feed.count, epoch), feed.batch_size)
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
