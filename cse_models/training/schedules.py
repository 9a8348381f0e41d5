"""The optimizer a `TrainingConfig` describes: clipping → Adam(W) with a learning-rate schedule.

The whole chain sits inside `optax.inject_hyperparams`, so the current learning rate is part of the
optimizer state: it is logged from there, checkpointed with it, and the reduce-on-plateau rule (Keras'
`ReduceLROnPlateau`, on the *validation* loss once per epoch) lowers it by writing that state.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import optax
from flax import nnx

from cse_models.training.config import TrainingConfig


def learning_rate_schedule(cfg: TrainingConfig, total_steps: int) -> float | optax.Schedule:
    """constant | cosine | warmup_cosine over `total_steps`; plateau starts constant (see `PlateauRule`)."""
    if cfg.lr_schedule in ("constant", "plateau"):
        return cfg.learning_rate
    end = cfg.learning_rate * cfg.min_lr_ratio
    if cfg.lr_schedule == "cosine":
        return optax.cosine_decay_schedule(cfg.learning_rate, max(total_steps, 1), alpha=cfg.min_lr_ratio)
    warmup = min(cfg.warmup_steps, max(total_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, warmup, max(total_steps, warmup + 1), end)


def build_optimizer(cfg: TrainingConfig, total_steps: int) -> optax.GradientTransformation:
    def chain(learning_rate):
        parts = [optax.clip_by_global_norm(cfg.grad_clip_norm)] if cfg.grad_clip_norm is not None else []
        if cfg.weight_decay > 0:
            parts.append(optax.adamw(learning_rate, weight_decay=cfg.weight_decay))
        else:
            parts.append(optax.adam(learning_rate))
        return optax.chain(*parts)

    return optax.inject_hyperparams(chain)(learning_rate=learning_rate_schedule(cfg, total_steps))


def current_learning_rate(optimizer: nnx.Optimizer) -> float:
    return float(optimizer.opt_state.hyperparams["learning_rate"][...])


@dataclass
class PlateauRule:
    """Multiply the LR by `factor` after `patience` epochs without a new best validation loss."""

    factor: float
    patience: int
    best: float = float("inf")
    bad_epochs: int = 0

    def observe(self, optimizer: nnx.Optimizer, val_loss: float) -> None:
        if val_loss < self.best:
            self.best, self.bad_epochs = val_loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            lr = optimizer.opt_state.hyperparams["learning_rate"]
            lr[...] = jnp.asarray(lr[...] * self.factor, lr[...].dtype)
            self.bad_epochs = 0

    def state(self) -> dict[str, float]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load(self, state: dict[str, float]) -> None:
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
