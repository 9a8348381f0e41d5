"""What a training run reports per epoch and in the end (plain data, saved in checkpoints and summaries)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
