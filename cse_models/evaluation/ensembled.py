"""Ensembles as walk-forward forecasters: on each fold, fit on the members' forecasts of the fold's
validation windows (the members fit on the fold's train segment only), then combine their test forecasts.

Members are not fit twice: `MemberForecasts` takes each member's validation forecasts through
`trained_forecaster(on_fitted=...)` and keeps the test forecasts the member's own forecaster returned,
so an ensemble row costs a few milliseconds of optax per fold. Member forecasters must run before the
ensembles (the forecaster dict is ordered: `walk_forward.default_forecasters` puts them first).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from cse_models.datasets.graph_inputs import last_closes
from cse_models.ensembles import EnsembleConfig, check_after_training, fit_ensemble, segment_fit_rows
from cse_models.errors import DataError
from cse_models.scoring.baselines import Forecaster, Forecasts
from cse_models.scoring.folds import FoldData


class MemberForecasts:
    """Per member and fold: its forecasts of the validation and of the test windows."""

    def __init__(self) -> None:
        self.val: dict[str, dict[int, Forecasts]] = defaultdict(dict)
        self.test: dict[str, dict[int, Forecasts]] = defaultdict(dict)

    def on_fitted(self, name: str):
        def keep(data: FoldData, member) -> None:
            self.val[name][data.fold.index] = member.forecast(data.segments["val"])

        return keep

    def keeping(self, name: str, forecaster: Forecaster) -> Forecaster:
        def forecast(data: FoldData) -> Forecasts:
            self.test[name][data.fold.index] = out = forecaster(data)
            return out

        return forecast

    def of(self, members: tuple[str, ...], data: FoldData) -> tuple[dict[str, Forecasts], dict[str, Forecasts]]:
        fold = data.fold.index
        missing = [n for n in members if fold not in self.val[n] or fold not in self.test[n]]
        if missing:
            raise DataError(f"fold {fold + 1}: ensemble members {missing} have not forecast it (run them first)")
        return {n: self.val[n][fold] for n in members}, {n: self.test[n][fold] for n in members}


def ensemble_forecaster(cfg: EnsembleConfig, memory: MemberForecasts) -> Forecaster:
    def forecast(data: FoldData) -> Forecasts:
        val, test = memory.of(cfg.members, data)
        rows = segment_fit_rows(val, cfg.members, data.segments["val"], data.data_cfg, data.scaler.feature_names)
        trained_until = int(data.segments["train"].open_time_ms[-1])
        check_after_training(rows, dict.fromkeys(cfg.members, trained_until))
        fitted = fit_ensemble(cfg, rows)
        last_close = last_closes(data.test, data.data_cfg)[:, 0].astype(np.float64)
        return fitted.combine(test, last_close)

    return forecast
