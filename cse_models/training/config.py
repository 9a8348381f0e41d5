"""Training configuration and the named budgets users pick from the UI or CLI.

Every field has a default that reproduces the Make Us Rich recipe (Adam, constant LR, fp32, no
augmentation); the scale-up options (schedules, clipping, weight decay, augmentation, bf16, remat,
adaptive batch size, step checkpoints) are off until a field turns them on. Only JSON-friendly values,
so `dataclasses.asdict(cfg)` goes straight into manifests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cse_models.errors import ConfigError
from cse_models.registry import Registry

LR_SCHEDULES = ("constant", "cosine", "warmup_cosine", "plateau")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainingConfig:
    """Defaults are Make Us Rich's: Adam lr 1e-4, MSE, batch 64, early stopping patience 2, ≤ 100 epochs.

    Scale-up options:
      lr_schedule: constant | cosine (decay to `min_lr_ratio`·lr over the run) | warmup_cosine (linear
        warmup over `warmup_steps`, then cosine) | plateau (multiply by `plateau_factor` after
        `plateau_patience` epochs without validation improvement).
      grad_clip_norm: clip gradients to this global L2 norm (None = no clipping).
      weight_decay: decoupled weight decay (AdamW, Loshchilov & Hutter 2019); 0 = plain Adam.
      jitter_std / scaling_std / window_slice: time-series augmentation of the training windows
        (Um et al. 2017; Le Guennec et al. 2016), drawn from a key derived from (seed, step).
      precision: fp32, or bf16 compute with fp32 master parameters and an fp32 loss.
      remat: recompute the forward pass in the backward pass (less memory, more compute).
      auto_batch_cap: probe the largest power-of-two batch ≤ this cap that fits in memory (None = off).
      checkpoint_every_steps: also save the resumable training state every K steps (epoch ends always).
      keep_best: how many best-by-validation-loss parameter checkpoints to keep.
      tensorboard: write TensorBoard event files into the run directory (`train_model`).
    """

    learning_rate: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 100
    patience: int = 2
    seed: int = 0
    shuffle: bool = True
    eval_batch_size: int = 1024
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 1
    grad_clip_norm: float | None = None
    weight_decay: float = 0.0
    jitter_std: float = 0.0
    scaling_std: float = 0.0
    window_slice: float = 1.0
    precision: str = "fp32"
    remat: bool = False
    auto_batch_cap: int | None = None
    checkpoint_every_steps: int | None = None
    keep_best: int = 1
    tensorboard: bool = True

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ConfigError(f"TrainingConfig.learning_rate must be > 0, got {self.learning_rate}")
        for name in ("batch_size", "max_epochs", "eval_batch_size", "keep_best"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TrainingConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("patience", "warmup_steps", "plateau_patience", "weight_decay", "jitter_std", "scaling_std"):
            if getattr(self, name) < 0:
                raise ConfigError(f"TrainingConfig.{name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("auto_batch_cap", "checkpoint_every_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"TrainingConfig.{name} must be None or ≥ 1, got {getattr(self, name)}")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise ConfigError(f"TrainingConfig.grad_clip_norm must be None or > 0, got {self.grad_clip_norm}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"TrainingConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"TrainingConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"TrainingConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not 0.0 < self.plateau_factor < 1.0:
            raise ConfigError(f"TrainingConfig.plateau_factor must be in (0, 1), got {self.plateau_factor}")
        if not 0.0 < self.window_slice <= 1.0:
            raise ConfigError(f"TrainingConfig.window_slice must be in (0, 1], got {self.window_slice}")

    @property
    def augments(self) -> bool:
        return self.jitter_std > 0 or self.scaling_std > 0 or self.window_slice < 1.0


BUDGETS: Registry[TrainingConfig] = Registry("training budget")
BUDGETS.add("full", TrainingConfig())
BUDGETS.add("demo", TrainingConfig(learning_rate=1e-3, max_epochs=8))
BUDGETS.add("tiny", TrainingConfig(learning_rate=1e-3, max_epochs=1))


def budget(name: str, **overrides) -> TrainingConfig:
    return replace(BUDGETS.get(name), **overrides)
