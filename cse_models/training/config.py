"""Training configuration and the named budgets users pick from the UI or CLI."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cse_models.errors import ConfigError
from cse_models.registry import Registry


@dataclass(frozen=True)
class TrainingConfig:
    """Defaults are Make Us Rich's: Adam lr 1e-4, MSE, batch 64, early stopping patience 2, ≤ 100 epochs."""

    learning_rate: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 100
    patience: int = 2
    seed: int = 0
    shuffle: bool = True
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("batch_size", "max_epochs", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TrainingConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.patience < 0:
            raise ConfigError(f"patience must be ≥ 0, got {self.patience}")


BUDGETS: Registry[TrainingConfig] = Registry("training budget")
BUDGETS.add("full", TrainingConfig())
BUDGETS.add("demo", TrainingConfig(learning_rate=1e-3, max_epochs=4))
BUDGETS.add("tiny", TrainingConfig(learning_rate=1e-3, max_epochs=1))


def budget(name: str, **overrides) -> TrainingConfig:
    return replace(BUDGETS.get(name), **overrides)
