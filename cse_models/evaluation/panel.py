"""Walk-forward over a panel of symbols: global members learn from every symbol at once, and every symbol
is scored on its own leaderboard beside its own per-symbol members and the baselines, on the same points.

Folds are calendar folds (`scoring.calendar`): one set of dates for all symbols, so no fold trains on any
symbol's rows after the date its test block starts. Per fold, each global member is fit ONCE on the pooled
train / val rows of every learning symbol (`datasets.pooled`: one scaler over them, windows weighted by
symbol) and then forecasts each symbol's test windows; a symbol marked `unseen` is never among the learners
(zero-shot: its leaderboard has the global rows and the baselines only). Global rows are named
`global:<spec>`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from cse_models.config import DataConfig
from cse_models.datasets.pooled import pooled_series
from cse_models.datasets.segments import epoch_ms
from cse_models.ensembles.config import default_ensembles
from cse_models.errors import ConfigError
from cse_models.evaluation.ensembled import MemberForecasts
from cse_models.evaluation.report import Leaderboards, build_leaderboards
from cse_models.evaluation.walk_forward import Progress, baseline_forecasters, member_forecasters, run_walk_forward
from cse_models.heads.tasks import task_spec
from cse_models.members import FittedMember, member_kind
from cse_models.scoring.baselines import BASELINES, Forecaster, Forecasts
from cse_models.scoring.calendar import CalendarFold, calendar_folds
from cse_models.scoring.folds import Fold, FoldData, WalkForwardConfig, segment_rows
from cse_models.specs import ModelSpec
from cse_models.training.config import TrainingConfig

log = logging.getLogger(__name__)

GLOBAL_PREFIX = "global:"
STABLE_SPREAD = 0.05  # a series whose closes all lie within ±5 % of their median has no price to forecast


def global_name(spec: ModelSpec) -> str:
    return f"{GLOBAL_PREFIX}{spec.name}"


@dataclass(frozen=True)
class PanelSymbol:
    """One symbol of the panel: its feature table (`compute_features`) and whether it is held out of every
    training fold (a symbol the global model has never seen)."""

    features: pl.DataFrame
    unseen: bool = False


def interval_ms(features: pl.DataFrame) -> int:
    """The series' candle interval: the median step between open times (0 for a single row)."""
    times = epoch_ms(features.get_column("open_time"))
    if times.size < 2:
        return 0
    return int(np.median(np.diff(times)))


def panel_interval(features: Mapping[str, pl.DataFrame]) -> int:
    """The one candle interval (ms) of the panel's symbols; ConfigError when they differ."""
    steps = {symbol: interval_ms(frame) for symbol, frame in features.items()}
    if len({step for step in steps.values() if step}) > 1:
        raise ConfigError(f"one panel, one interval: the symbols' candles are {steps} ms apart")
    return next((step for step in steps.values() if step), 0)


def stable_reason(features: pl.DataFrame) -> str | None:
    """Why a series must not teach the panel, if it is stablecoin-like: its closes stay within
    ±`STABLE_SPREAD` of their median (USDC/USDT), so its σ-scaled returns are rounding noise."""
    close = features.get_column("close").to_numpy()
    median = float(np.median(close))
    spread = float(np.max(np.abs(close / median - 1.0)))
    if spread <= STABLE_SPREAD:
        return (
            f"stablecoin-like: every close is within ±{spread:.2%} of {median:.4g}; excluded from the panel "
            "and its heads withheld (no price move to forecast)"
        )
    return None


@dataclass(frozen=True)
class PanelPlan:
    """The calendar folds, each symbol's scored folds, each fold's learners' rows, and why a symbol is out."""

    folds: tuple[CalendarFold, ...]
    scored: dict[str, list[Fold]]
    learners: dict[int, dict[str, dict[str, slice]]]  # fold → symbol → {"train": rows, "val": rows}
    excluded: dict[str, str]


def plan_panel(symbols: Mapping[str, PanelSymbol], data_cfg: DataConfig, config: WalkForwardConfig) -> PanelPlan:
    """Calendar folds over all symbols' spans, then per symbol the folds it is scored on and the folds it
    learns from. Raises ConfigError for symbols of different intervals."""
    step = panel_interval({symbol: panel.features for symbol, panel in symbols.items()})
    times = {symbol: epoch_ms(panel.features.get_column("open_time")) for symbol, panel in symbols.items()}
    folds = calendar_folds(times, step, data_cfg, config)
    need = segment_rows(data_cfg, config)
    excluded = {s: reason for s, panel in symbols.items() if (reason := stable_reason(panel.features))}
    scored: dict[str, list[Fold]] = {}
    for symbol in symbols:
        rows = [f for fold in folds if (f := fold.rows(times[symbol], need)) is not None]
        if symbol in excluded:
            continue
        if not rows:
            excluded[symbol] = _insufficient(times[symbol], folds, need)
            continue
        scored[symbol] = rows
    learners: dict[int, dict[str, dict[str, slice]]] = {}
    for fold in folds:
        for symbol, panel in symbols.items():
            if panel.unseen or symbol in excluded:
                continue
            if fold.rows(times[symbol], need, ("train", "val")) is not None:
                slices = fold.slices(times[symbol], need)
                learners.setdefault(fold.index, {})[symbol] = {"train": slices["train"], "val": slices["val"]}
    return PanelPlan(tuple(folds), scored, learners, excluded)


def _insufficient(times: np.ndarray, folds: Sequence[CalendarFold], need: int) -> str:
    """The reason a symbol is scored on no fold: its candles and the fewest that one fold would take."""
    shortfall = min(fold.shortfall(times, need) for fold in folds)
    return (
        f"insufficient history: {times.size} candles, {times.size + shortfall} needed for one calendar fold "
        f"(≥ {need} candles in each of its train, val and test segments)"
    )


class GlobalFits:
    """Each global member fit once per calendar fold on the pooled learners' rows, kept for every symbol."""

    def __init__(
        self,
        symbols: Mapping[str, PanelSymbol],
        plan: PanelPlan,
        data_cfg: DataConfig,
        train_cfg: TrainingConfig,
        *,
        weighting: str = "rows",
        on_progress: Progress | None = None,
    ) -> None:
        self.symbols, self.plan, self.data_cfg, self.train_cfg = symbols, plan, data_cfg, train_cfg
        self.weighting, self.say = weighting, on_progress or log.info
        self.fitted: dict[tuple[str, int], FittedMember] = {}

    def member(self, spec: ModelSpec, fold: int) -> FittedMember:
        key = (spec.name, fold)
        if key not in self.fitted:
            learners = self.plan.learners.get(fold, {})
            features = {symbol: self.symbols[symbol].features for symbol in learners}
            data = pooled_series(features, learners, self.data_cfg, self.weighting)
            self.say(f"fold {fold + 1}: {global_name(spec)} on {len(learners)} symbols ({', '.join(learners)})")
            self.fitted[key] = member_kind(spec.architecture).fit(spec, data, self.train_cfg)
        return self.fitted[key]

    def forecaster(self, spec: ModelSpec, memory: MemberForecasts) -> Forecaster:
        """The fold's global member on the symbol's test windows; its forecasts of the symbol's val windows
        go to `memory`, for the ensembles that combine it with the symbol's own members."""
        member_kind(spec.architecture).validate(spec)

        def forecast(data: FoldData) -> Forecasts:
            member = self.member(spec, data.fold.index)
            memory.val[global_name(spec)][data.fold.index] = member.forecast(data.segments["val"])
            return member.forecast(data.test)

        return memory.keeping(global_name(spec), forecast)


def symbol_forecasters(
    task: str,
    fits: GlobalFits,
    *,
    models: Sequence[ModelSpec],
    global_models: Sequence[ModelSpec],
    budget: str,
    on_progress: Progress | None,
    ensembles: bool = True,
) -> dict[str, Forecaster]:
    """One symbol's forecasters, in the order they must run: the baselines, its own members (none for an
    unseen symbol), the global members, the ensembles of its own members (`ensemble_<method>`) and, with
    own and global members both, the ensembles of all of them (`global:ensemble_<method>`: they learn
    from the panel too)."""
    from cse_models.evaluation.ensembled import ensemble_forecaster

    memory = MemberForecasts()
    forecasters = {**baseline_forecasters(task), **member_forecasters(models, budget, memory, on_progress)}
    for spec in global_models:
        forecasters[global_name(spec)] = fits.forecaster(spec, memory)
    own = tuple(spec.name for spec in models)
    mixed = own + tuple(global_name(spec) for spec in global_models) if own and global_models else ()
    combined = [*default_ensembles(own), *(replace(c, name=GLOBAL_PREFIX + c.name) for c in default_ensembles(mixed))]
    for cfg in combined if ensembles and task_spec(task).card else ():
        forecasters[cfg.name] = ensemble_forecaster(cfg, memory)
    return forecasters


@dataclass(frozen=True)
class PanelEvaluation:
    """Each scored symbol's leaderboards, which symbols were zero-shot, and why the others are out."""

    boards: dict[str, Leaderboards]
    zero_shot: frozenset[str]
    excluded: dict[str, str]
    folds: tuple[CalendarFold, ...]
    learners: dict[int, tuple[str, ...]] = field(default_factory=dict)


def evaluate_panel(
    symbols: Mapping[str, PanelSymbol],
    data_cfg: DataConfig,
    config: WalkForwardConfig,
    *,
    models: Sequence[ModelSpec],
    global_models: Sequence[ModelSpec],
    budget: str = "demo",
    ensembles: bool = True,
    weighting: str = "rows",
    dm_loss: str = "absolute",
    info: dict[str, Any] | None = None,
    on_progress: Progress | None = None,
) -> PanelEvaluation:
    """Walk every scored symbol forward on its calendar folds (`symbol_forecasters`): baselines, its own
    members (not for unseen symbols), the global members fit once per fold on the panel, and ensembles."""
    from cse_models.training.config import budget as training_budget

    plan = plan_panel(symbols, data_cfg, config)
    fits = GlobalFits(symbols, plan, data_cfg, training_budget(budget), weighting=weighting, on_progress=on_progress)
    boards = {}
    for symbol, folds in plan.scored.items():
        unseen = symbols[symbol].unseen
        forecasters = symbol_forecasters(
            data_cfg.task,
            fits,
            models=() if unseen else models,
            global_models=global_models,
            budget=budget,
            on_progress=on_progress,
            ensembles=ensembles,
        )
        kinds = {name: "model" for name in forecasters if name not in BASELINES}
        result = run_walk_forward(
            symbols[symbol].features, data_cfg, config, forecasters, kinds=kinds, on_progress=on_progress, folds=folds
        )
        settings = {"budget": budget, "seq_len": data_cfg.seq_len, "feature_set": data_cfg.feature_set}
        board_info = {**settings, **(info or {}), "symbol": symbol, "zero_shot": unseen, "weighting": weighting}
        boards[symbol] = build_leaderboards(result, dm_loss=dm_loss, info=board_info)
    zero_shot = frozenset(s for s in plan.scored if symbols[s].unseen)
    learners = {fold: tuple(rows) for fold, rows in plan.learners.items()}
    return PanelEvaluation(boards, zero_shot, plan.excluded, plan.folds, learners)
