"""Chronological train / validation / test split with a purge gap.

Never random: a random split lets a model see tomorrow while being scored on today. The purge gap
(default `seq_len` rows) between segments keeps the last training targets out of the first validation
windows' inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from cse_models.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitConfig:
    train: float = 0.72
    val: float = 0.18
    test: float = 0.10
    purge: int | None = None  # rows dropped between segments; None → seq_len

    def __post_init__(self) -> None:
        for name in SPLITS:
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ConfigError(f"split.{name} must be in (0, 1), got {value}")
        if abs(self.train + self.val + self.test - 1.0) > 1e-9:
            raise ConfigError(f"split fractions must sum to 1, got {self.train + self.val + self.test}")
        if self.purge is not None and self.purge < 0:
            raise ConfigError(f"split.purge must be ≥ 0, got {self.purge}")


def chronological_split(n_rows: int, config: SplitConfig, *, min_rows: int, purge: int) -> dict[str, slice]:
    """Row slices per split, oldest first; each segment holds at least `min_rows` rows."""
    usable = n_rows - 2 * purge
    bounds = [0]
    for fraction in (config.train, config.val):
        bounds.append(bounds[-1] + int(usable * fraction))
    slices = {
        "train": slice(0, bounds[1]),
        "val": slice(bounds[1] + purge, bounds[2] + purge),
        "test": slice(bounds[2] + 2 * purge, n_rows),
    }
    for name, part in slices.items():
        size = part.stop - part.start
        if size < min_rows:
            need = int(min_rows / min(config.train, config.val, config.test)) + 2 * purge + 1
            raise DataError(
                f"{n_rows} rows are too few: the {name} split gets {size} rows, needs ≥ {min_rows} "
                f"(about {need} rows in all for this split and seq_len)"
            )
    return slices
