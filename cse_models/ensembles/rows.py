"""`FitRows`: the windows an ensemble is fit on — its members' out-of-sample forecasts of them, in the
combining spaces, and what happened — with the times that the leakage checks read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cse_models.config import DataConfig
from cse_models.datasets.segments import SplitArrays
from cse_models.ensembles.spaces import Forecasts, Stacks, stack_forecasts
from cse_models.errors import DataError
from cse_models.features.sets import RANGE_FLOOR
from cse_models.features.windows import target_rows


class EnsembleLeakageError(DataError):
    """An ensemble would be fit on rows its members (or its own earlier folds) were trained on or that
    lie in their future."""


@dataclass(frozen=True)
class FitRows:
    stacks: Stacks
    true_return: np.ndarray  # [n] log(close at the target / last close)
    true_log_range: np.ndarray  # [n] log of the realized next-horizon log(high/low), floored
    labels: np.ndarray  # [n] Sell / Hold / Buy
    window_start_ms: np.ndarray  # [n] open time of each window's first row
    target_time_ms: np.ndarray  # [n] open time of each window's target candle
    interval_level: float

    @property
    def size(self) -> int:
        return self.true_return.size

    def take(self, index: np.ndarray) -> FitRows:
        return FitRows(
            self.stacks.rows(index),
            self.true_return[index],
            self.true_log_range[index],
            self.labels[index],
            self.window_start_ms[index],
            self.target_time_ms[index],
            self.interval_level,
        )


def segment_fit_rows(
    forecasts: Mapping[str, Forecasts],
    members: Sequence[str],
    split: SplitArrays,
    data_cfg: DataConfig,
    feature_names: tuple[str, ...],
) -> FitRows:
    """Members' forecasts for every window of a segment (the validation segment: never seen in training)."""
    t = split.targets(data_cfg, feature_names)
    rows = target_rows(split.close.shape[0], data_cfg.seq_len, data_cfg.horizon)
    starts = rows - data_cfg.horizon - data_cfg.seq_len + 1
    return FitRows(
        stacks=stack_forecasts(forecasts, members, t.last_close),
        true_return=t.log_return,
        true_log_range=np.log(np.maximum(t.range, RANGE_FLOOR)),
        labels=np.asarray(t.label, dtype=np.int64),
        window_start_ms=split.open_time_ms[starts],
        target_time_ms=split.open_time_ms[rows],
        interval_level=data_cfg.interval_level,
    )


def check_after_training(rows: FitRows, members_trained_until_ms: Mapping[str, int]) -> None:
    """Refuse fitting rows whose windows reach back into a member's training rows: a member's forecasts
    there are in-sample, and weights learned on them favour whoever overfit most."""
    first = int(rows.window_start_ms.min())
    overlapping = {name: until for name, until in members_trained_until_ms.items() if until >= first}
    if overlapping:
        raise EnsembleLeakageError(
            f"the ensemble's fitting windows start at {first} ms, inside the training rows of "
            f"{sorted(overlapping)} (trained until {sorted(set(overlapping.values()))} ms): fit it on later rows"
        )
