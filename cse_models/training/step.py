"""The train step: windows gathered on device from their start rows, augmentation and dropout keyed by
(seed, step), the weighted loss in fp32 over a compute-dtype forward pass, one optax update — jitted once
per shape (`train_step`, and `SplitTrainStep` for a loop of many steps)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from cse_models.training.augment import augment_windows, augmentation_key
from cse_models.training.config import TrainingConfig
from cse_models.training.losses import per_window_losses
from cse_models.training.precision import cast_floating, compute_dtype

DROPOUT_STREAM = 0  # folded into the seed; augmentation uses `augment.AUGMENT_STREAM`


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
