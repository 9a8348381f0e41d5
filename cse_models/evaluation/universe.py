"""The panel's summary, per symbol and head: the best global member, the best own (per-symbol) member and,
for volatility, HAR — what `DIR/universe.json` holds and the demo prints.

Skill is each leaderboard's own (against the head's reference baseline, on the same points); for
volatility `global_vs_har` is also given: 1 − MAE(best global) / MAE(HAR), the strong classical baseline a
network must beat.
"""

from __future__ import annotations

from typing import Any

from cse_models.evaluation.panel import GLOBAL_PREFIX, PanelEvaluation
from cse_models.evaluation.report import Leaderboard, LeaderboardRow
from cse_models.scoring.metrics import skill
from cse_models.scoring.rules import SCORING

HAR = "har"


def _best(rows: list[LeaderboardRow]) -> LeaderboardRow | None:
    return max(rows, key=lambda row: row.skill, default=None)


def _entry(row: LeaderboardRow | None, head: str) -> dict[str, Any] | None:
    if row is None:
        return None
    entry = {"name": row.name, "skill": row.skill, "p_value": row.dm.p_value_model_better}
    if head == "interval":
        entry["coverage_per_fold"] = [fold["coverage"] for fold in row.fold_metrics]
    return entry


def head_summary(board: Leaderboard) -> dict[str, Any]:
    """Best global and best own model rows of one head's leaderboard (None where there is none)."""
    models = [row for row in board.rows if row.kind == "model"]
    best_global = _best([row for row in models if row.name.startswith(GLOBAL_PREFIX)])
    best_own = _best([row for row in models if not row.name.startswith(GLOBAL_PREFIX)])
    summary: dict[str, Any] = {
        "reference": board.reference,
        "best_global": _entry(best_global, board.head),
        "best_own": _entry(best_own, board.head),
    }
    if best_global is not None and best_own is not None:
        summary["global_beats_own"] = best_global.skill >= best_own.skill
    names = {row.name: row for row in board.rows}
    if HAR in names:
        metric = SCORING[board.head].skill_metric
        summary[HAR] = {"skill": names[HAR].skill}
        for key, row in (("global_vs_har", best_global), ("own_vs_har", best_own)):
            if row is not None:
                summary[key] = skill(row.metrics[metric], names[HAR].metrics[metric], what=metric)
    return summary


def universe_summary(evaluation: PanelEvaluation, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """`universe.json`: per scored symbol its folds, points and head summaries; excluded symbols with
    the reason; which symbols each fold's global members learned from."""
    symbols = {}
    for symbol, boards in evaluation.boards.items():
        any_board = boards[boards.heads[0]]
        symbols[symbol] = {
            "zero_shot": symbol in evaluation.zero_shot,
            "folds": [fold["index"] for fold in any_board.folds],
            "points": any_board.n_points,
            "heads": {head: head_summary(boards[head]) for head in boards.heads},
        }
    return {
        "settings": settings or {},
        "symbols": symbols,
        "excluded": evaluation.excluded,
        "learners_per_fold": {str(fold): list(names) for fold, names in evaluation.learners.items()},
        "folds": [{"index": fold.index, **{k: list(v) for k, v in fold.bounds.items()}} for fold in evaluation.folds],
    }
