"""Fitting the ensemble the graph publishes: the method that scored best walk-forward, fit on what the
published members' ONNX graphs forecast for the validation windows — the graphs that will run inside the
composed one — and the decision whether it or its best member is published.

The head the gate judges is the price (`GATE_HEAD`): an ensemble is published only when its walk-forward
price skill beats its best member's; otherwise the best member is, and the reason says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cse_models.config import DataConfig
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import SplitArrays
from cse_models.ensembles.config import EnsembleConfig
from cse_models.ensembles.fitted import FittedEnsemble
from cse_models.ensembles.kinds import fit_ensemble
from cse_models.ensembles.rows import check_after_training, segment_fit_rows
from cse_models.ensembles.spaces import Forecasts
from cse_models.errors import DataError
from cse_models.evaluation.report import Leaderboards
from cse_models.features.windows import n_windows
from cse_models.heads.layout import outputs_by_head

GATE_HEAD = "price"


def choose_ensemble(boards: Leaderboards, ensembles: Sequence[EnsembleConfig]) -> EnsembleConfig:
    """The ensemble with the best walk-forward skill on the gate's head (ties: the first listed)."""
    board = boards[GATE_HEAD]
    on_board = {row.name for row in board.rows}
    scored = [cfg for cfg in ensembles if cfg.name in on_board]
    if not scored:
        raise DataError(f"no ensemble of {[c.name for c in ensembles]} is on the {GATE_HEAD} leaderboard")
    return max(scored, key=lambda cfg: board.row(cfg.name).skill)


def graph_forecasts(paths: Mapping[str, str | Path], split: SplitArrays, data_cfg: DataConfig) -> dict[str, Forecasts]:
    """Each member graph's head forecasts for every window of a segment, through onnxruntime."""
    from cse_models.ensembles.compose import run_graph

    inputs = graph_inputs(split, data_cfg, limit=n_windows(split.close.shape[0], data_cfg.seq_len, data_cfg.horizon))
    return {
        name: outputs_by_head(data_cfg.task, list(run_graph(path, inputs).values())) for name, path in paths.items()
    }


def fit_on_graphs(cfg: EnsembleConfig, member_paths: Mapping[str, str | Path], data: PreparedSeries) -> FittedEnsemble:
    """Fit `cfg` on the member graphs' validation forecasts; refuses rows inside the train segment."""
    forecasts = graph_forecasts({name: member_paths[name] for name in cfg.members}, data.val, data.config)
    rows = segment_fit_rows(forecasts, cfg.members, data.val, data.config, data.scaler.feature_names)
    check_after_training(rows, dict.fromkeys(cfg.members, int(data.train.open_time_ms[-1])))
    return fit_ensemble(cfg, rows)


@dataclass(frozen=True)
class EnsembleChoice:
    publish_ensemble: bool
    ensemble_skill: float
    best_member: str
    best_member_skill: float
    reason: str


def ensemble_or_member(boards: Leaderboards, ensemble: str, members: Sequence[str]) -> EnsembleChoice:
    """Whether the ensemble's walk-forward skill on the gate's head beats the best of its members'."""
    board = boards[GATE_HEAD]
    best = max(members, key=lambda name: board.row(name).skill)
    mine, theirs = board.row(ensemble).skill, board.row(best).skill
    wins = mine > theirs
    verdict = "beats" if wins else "does not beat"
    return EnsembleChoice(
        wins,
        mine,
        best,
        theirs,
        f"{ensemble}'s walk-forward {GATE_HEAD} skill {mine:+.4%} {verdict} its best member {best}'s {theirs:+.4%}",
    )
