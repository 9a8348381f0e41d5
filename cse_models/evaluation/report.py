"""The leaderboard (forecasters × metrics, baselines included), its JSON and Markdown, and the promotion gate.

Skill and the Diebold–Mariano test compare each forecaster with the task's reference on the same points:
MAE and absolute (or squared) error against persistence for prices; for sell/hold/buy the Brier score
against the train class frequencies (not the one-hot majority class, which any soft forecast beats).
A model is published only if its walk-forward skill is > 0 *and* the DM test says it is significantly
better (one-sided p ≤ level): beating persistence by luck on one period is not enough.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cse_models.errors import ConfigError
from cse_models.evaluation.baselines import REFERENCE
from cse_models.evaluation.dm_test import LOSSES, DMResult, diebold_mariano_losses
from cse_models.evaluation.metrics import brier_losses, classification_scores, regression_scores, skill
from cse_models.evaluation.walk_forward import WalkForwardResult


@dataclass(frozen=True)
class TaskScoring:
    """How one task is scored: the metrics, the per-point loss the DM test uses, the metric behind skill."""

    scores: Callable[[np.ndarray, WalkForwardResult, np.ndarray], dict[str, float]]
    point_losses: Callable[[np.ndarray, WalkForwardResult, str], np.ndarray]
    skill_metric: str
    columns: tuple[tuple[str, str], ...]  # (metric key, Markdown header)


def _regression_scores(forecast: np.ndarray, result: WalkForwardResult, sel: np.ndarray) -> dict[str, float]:
    return regression_scores(forecast[sel], result.actual[sel], result.last_close[sel])


def _classification_scores(forecast: np.ndarray, result: WalkForwardResult, sel: np.ndarray) -> dict[str, float]:
    return classification_scores(forecast[sel], result.actual[sel].astype(np.int64))


SCORING: dict[str, TaskScoring] = {
    "regression": TaskScoring(
        scores=_regression_scores,
        point_losses=lambda f, r, loss: LOSSES.get(loss)(f - r.actual),
        skill_metric="mae",
        columns=(("mae", "MAE"), ("rmse", "RMSE"), ("mape", "MAPE %"), ("directional_accuracy", "dir. acc.")),
    ),
    "classification": TaskScoring(
        scores=_classification_scores,
        point_losses=lambda f, r, _: brier_losses(f, r.actual.astype(np.int64)),
        skill_metric="brier",
        columns=(("accuracy", "accuracy"), ("f1_macro", "macro-F1"), ("log_loss", "log loss"), ("brier", "Brier")),
    ),
}


@dataclass(frozen=True)
class LeaderboardRow:
    name: str
    kind: str  # "baseline" | "model"
    metrics: dict[str, float]
    skill: float  # pooled over all folds' points
    fold_skill: tuple[float, ...]
    dm: DMResult  # against the reference; the reference against itself has statistic 0, p 1


@dataclass(frozen=True)
class Leaderboard:
    task: str
    reference: str
    horizon: int
    dm_loss: str
    n_points: int
    rows: tuple[LeaderboardRow, ...]  # best skill first
    folds: tuple[dict[str, Any], ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str) -> LeaderboardRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise ConfigError(f"{name!r} is not on the leaderboard; it has {', '.join(r.name for r in self.rows)}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Leaderboard:
        rows = tuple(
            LeaderboardRow(**{**r, "fold_skill": tuple(r["fold_skill"]), "dm": DMResult(**r["dm"])})
            for r in data["rows"]
        )
        return cls(**{**data, "rows": rows, "folds": tuple(data.get("folds", ()))})

    def to_markdown(self) -> str:
        scoring = SCORING[self.task]
        symbol = f"{self.info['symbol']} " if self.info.get("symbol") else ""
        title = f"### Walk-forward leaderboard — {symbol}({self.task}, horizon {self.horizon})"
        summary = (
            f"{len(self.folds)} {self.info.get('scheme', '')} folds · {self.n_points:,} out-of-sample points · "
            f"{self.info.get('first_target', '?')} → {self.info.get('last_target', '?')} · "
            f"skill = 1 − {scoring.skill_metric.upper()} / {scoring.skill_metric.upper()}({self.reference}) · "
            f"DM vs {self.reference}: {self.dm_loss} loss, HLN-corrected, Student t(n−1)"
        )
        extra = {k: v for k, v in self.info.items() if k not in ("symbol", "scheme", "first_target", "last_target")}
        headers = [
            "#",
            "forecaster",
            "kind",
            *(h for _, h in scoring.columns),
            "skill",
            "skill per fold",
            "DM stat",
            "p (better)",
            "p (2-sided)",
        ]
        lines = [title, "", summary]
        if extra:
            lines.append(" · ".join(f"{k}: {v}" for k, v in extra.items()))
        lines += ["", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for rank, row in enumerate(self.rows, 1):
            cells = [
                str(rank),
                f"**{row.name}**" if row.kind == "model" else row.name,
                row.kind,
                *(_number(row.metrics[key]) for key, _ in scoring.columns),
                f"{row.skill:+.4f}",
                " / ".join(f"{s:+.3f}" for s in row.fold_skill),
                f"{row.dm.statistic:+.2f}",
                f"{row.dm.p_value_model_better:.3g}",
                f"{row.dm.p_value:.3g}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def save(self, directory: str | Path, stem: str = "leaderboard") -> tuple[Path, Path]:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
        json_path.write_text(self.to_json())
        md_path.write_text(self.to_markdown())
        return json_path, md_path


def _number(value: float) -> str:
    return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4g}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def build_leaderboard(
    result: WalkForwardResult, *, dm_loss: str = "absolute", info: dict[str, Any] | None = None
) -> Leaderboard:
    """Score every forecaster of a walk-forward run on the same points; rows sorted by skill, best first.

    `dm_loss` ("absolute" or "squared") applies to price forecasts; class forecasts use the Brier loss."""
    scoring = SCORING[result.task]
    reference = REFERENCE[result.task]
    if reference not in result.forecasts:
        raise ConfigError(f"the walk-forward run has no {reference!r} forecasts to compare with")
    loss_name = dm_loss if result.task == "regression" else "brier"
    ref_forecast = result.forecasts[reference]
    everything = np.ones(result.fold_of.shape, dtype=bool)
    ref_scores = scoring.scores(ref_forecast, result, everything)
    ref_losses = scoring.point_losses(ref_forecast, result, dm_loss)
    fold_masks = [result.fold_of == fold.index for fold in result.folds]
    ref_fold = [scoring.scores(ref_forecast, result, m)[scoring.skill_metric] for m in fold_masks]
    rows = []
    for name, forecast in result.forecasts.items():
        scores = scoring.scores(forecast, result, everything)
        fold_skill = tuple(
            skill(scoring.scores(forecast, result, m)[scoring.skill_metric], ref, what=scoring.skill_metric.upper())
            for m, ref in zip(fold_masks, ref_fold, strict=True)
        )
        dm = diebold_mariano_losses(
            scoring.point_losses(forecast, result, dm_loss), ref_losses, horizon=result.horizon, loss=loss_name
        )
        rows.append(
            LeaderboardRow(
                name=name,
                kind=result.kinds[name],
                metrics=scores,
                skill=skill(
                    scores[scoring.skill_metric], ref_scores[scoring.skill_metric], what=scoring.skill_metric.upper()
                ),
                fold_skill=fold_skill,
                dm=dm,
            )
        )
    rows.sort(key=lambda r: -r.skill)
    folds = tuple(
        {
            "index": fold.index,
            **{f"{seg}_rows": [part.start, part.stop] for seg, part in fold.segments().items()},
            **{f"{seg}_time": [_iso(a), _iso(b)] for seg, (a, b) in times.items()},
            "points": int(np.count_nonzero(mask)),
        }
        for fold, times, mask in zip(result.folds, result.fold_times, fold_masks, strict=True)
    )
    info = {
        "scheme": result.config.scheme,
        "first_target": _iso(int(result.target_time_ms[0])),
        "last_target": _iso(int(result.target_time_ms[-1])),
        **(info or {}),
    }
    return Leaderboard(
        task=result.task,
        reference=reference,
        horizon=result.horizon,
        dm_loss=loss_name,
        n_points=int(result.fold_of.size),
        rows=tuple(rows),
        folds=folds,
        info=info,
    )


@dataclass(frozen=True)
class PromotionDecision:
    publish: bool
    reason: str
    forced: bool = False


def promotion_decision(
    leaderboard: Leaderboard, model: str, max_p_value: float = 0.05, *, force: bool = False
) -> PromotionDecision:
    """Publish only when walk-forward skill > 0 and the DM one-sided p-value (model better) ≤ `max_p_value`.

    `force=True` publishes anyway and records it: `forced` is True and the reason keeps the verdict."""
    if not 0 < max_p_value < 1:
        raise ConfigError(f"max_p_value must be in (0, 1), got {max_p_value}")
    row = leaderboard.row(model)
    p = row.dm.p_value_model_better
    against = f"{leaderboard.reference} ({leaderboard.dm_loss} loss)"
    if row.skill <= 0:
        verdict, reason = False, f"walk-forward skill {row.skill:+.4f} ≤ 0: {model} does not beat {against}"
    elif p > max_p_value:
        verdict, reason = (
            False,
            (
                f"skill {row.skill:+.4f} > 0 but DM p-value {p:.3g} > {max_p_value}: "
                f"{model} is not significantly better than {against}"
            ),
        )
    else:
        verdict, reason = True, f"skill {row.skill:+.4f} > 0 and DM p-value {p:.3g} ≤ {max_p_value} against {against}"
    if force and not verdict:
        return PromotionDecision(publish=True, reason=f"forced publication; the gate said: {reason}", forced=True)
    return PromotionDecision(publish=verdict, reason=reason)
