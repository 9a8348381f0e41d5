"""Leaderboards per head (forecasters × metrics, baselines included), their JSON and Markdown, and the
promotion gate per head.

Skill and the Diebold–Mariano test compare each forecaster with the head's reference on the same points
(`scoring.SCORING`): price MAE against persistence, interval Winkler score against trailing quantiles,
volatility MAE against the trailing mean, Sell/Hold/Buy Brier against the train class frequencies.
A head is published only if its walk-forward skill is > 0 *and* the DM test says it is significantly
better (one-sided p ≤ level): beating the reference by luck on one period is not enough.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cse_models.errors import ConfigError
from cse_models.evaluation.walk_forward import WalkForwardResult
from cse_models.scoring.baselines import REFERENCE
from cse_models.scoring.dm_test import DMResult, diebold_mariano_losses
from cse_models.scoring.metrics import skill
from cse_models.scoring.rules import SCORING


@dataclass(frozen=True)
class LeaderboardRow:
    name: str
    kind: str  # "baseline" | "model"
    metrics: dict[str, float]
    skill: float  # pooled over all folds' points
    fold_skill: tuple[float, ...]
    dm: DMResult  # against the reference; the reference against itself has statistic 0, p 1
    fold_metrics: tuple[dict[str, float], ...] = ()  # every metric per fold (e.g. interval coverage)


@dataclass(frozen=True)
class Leaderboard:
    """One head's leaderboard (price, interval, volatility, direction)."""

    head: str
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
            LeaderboardRow(
                **{
                    **r,
                    "fold_skill": tuple(r["fold_skill"]),
                    "fold_metrics": tuple(r.get("fold_metrics", ())),
                    "dm": DMResult(**r["dm"]),
                }
            )
            for r in data["rows"]
        )
        named = {key: value for key, value in data.items() if key != "task"}
        head = data.get("head", data.get("task"))  # boards written before the field was named for what it is
        return cls(**{**named, "head": head, "rows": rows, "folds": tuple(data.get("folds", ()))})

    def to_markdown(self) -> str:
        scoring = SCORING[self.head]
        symbol = f"{self.info['symbol']} " if self.info.get("symbol") else ""
        title = f"### Walk-forward leaderboard — {symbol}{self.head} head, horizon {self.horizon}"
        summary = (
            f"{len(self.folds)} {self.info.get('scheme', '')} folds · {self.n_points:,} out-of-sample points · "
            f"{self.info.get('first_target', '?')} → {self.info.get('last_target', '?')} · "
            f"skill = 1 − {scoring.skill_metric.upper()} / {scoring.skill_metric.upper()}({self.reference}) · "
            f"DM vs {self.reference}: {self.dm_loss} loss, HLN-corrected, Student t(n−1)"
        )
        extra = {k: v for k, v in self.info.items() if k not in ("symbol", "scheme", "first_target", "last_target")}
        if self.head == "price" and self.rows:
            extra["always up dir. acc."] = f"{self.rows[0].metrics['always_up_accuracy']:.4f}"
        headers = [
            "#",
            "forecaster",
            "kind",
            *(h for _, h in scoring.columns),
            "skill",
            "skill per fold",
            *(["coverage per fold"] if self.head == "interval" else []),
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
                *([" / ".join(f"{f['coverage']:.3f}" for f in row.fold_metrics)] if self.head == "interval" else []),
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
    result: WalkForwardResult, head: str, *, dm_loss: str = "absolute", info: dict[str, Any] | None = None
) -> Leaderboard:
    """Score every forecaster of one head of a walk-forward run on the same points; rows sorted by skill,
    best first. `dm_loss` ("absolute" or "squared") applies to price and volatility forecasts; intervals
    use the Winkler score, class forecasts the Brier loss."""
    if head not in result.forecasts:
        raise ConfigError(f"the walk-forward run has no {head!r} head; it has {list(result.forecasts)}")
    scoring = SCORING[head]
    reference = REFERENCE[head]
    forecasts = result.forecasts[head]
    if reference not in forecasts:
        raise ConfigError(f"the walk-forward run has no {reference!r} forecasts to compare the {head} head with")
    truth, level, metric = result.truth[head], result.interval_level, scoring.skill_metric

    def scores(forecast: np.ndarray, sel: np.ndarray) -> dict[str, float]:
        return scoring.scores(forecast[sel], truth[sel], result.last_close[sel], level)

    everything = np.ones(result.fold_of.shape, dtype=bool)
    ref_scores = scores(forecasts[reference], everything)
    ref_losses = scoring.point_losses(forecasts[reference], truth, dm_loss, level)
    fold_masks = [result.fold_of == fold.index for fold in result.folds]
    ref_fold = [scores(forecasts[reference], m)[metric] for m in fold_masks]
    rows = []
    for name, forecast in forecasts.items():
        mine = scores(forecast, everything)
        per_fold = tuple(scores(forecast, m) for m in fold_masks)
        fold_skill = tuple(
            skill(fold[metric], ref, what=metric.upper()) for fold, ref in zip(per_fold, ref_fold, strict=True)
        )
        dm = diebold_mariano_losses(
            scoring.point_losses(forecast, truth, dm_loss, level),
            ref_losses,
            horizon=result.horizon,
            loss=scoring.dm_loss(dm_loss),
        )
        rows.append(
            LeaderboardRow(
                name=name,
                kind=result.kinds[name],
                metrics=mine,
                skill=skill(mine[metric], ref_scores[metric], what=metric.upper()),
                fold_skill=fold_skill,
                dm=dm,
                fold_metrics=per_fold,
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
        head=head,
        reference=reference,
        horizon=result.horizon,
        dm_loss=scoring.dm_loss(dm_loss),
        n_points=int(result.fold_of.size),
        rows=tuple(rows),
        folds=folds,
        info=info,
    )


@dataclass(frozen=True)
class Leaderboards:
    """Every head's leaderboard of one walk-forward run (the `evaluation` asset's value)."""

    boards: dict[str, Leaderboard]

    def __getitem__(self, head: str) -> Leaderboard:
        try:
            return self.boards[head]
        except KeyError:
            raise ConfigError(f"no {head!r} leaderboard; heads: {list(self.boards)}") from None

    @property
    def heads(self) -> tuple[str, ...]:
        return tuple(self.boards)

    def models(self) -> list[str]:
        """Names of the models (not baselines) on any board, in first-seen order."""
        names: dict[str, None] = {}
        for board in self.boards.values():
            names.update({row.name: None for row in board.rows if row.kind == "model"})
        return list(names)

    def to_json(self) -> str:
        return json.dumps({head: board.as_dict() for head, board in self.boards.items()}, indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Leaderboards:
        return cls({head: Leaderboard.from_dict(board) for head, board in data.items()})

    def to_markdown(self) -> str:
        return "\n".join(board.to_markdown() for board in self.boards.values())

    def save(self, directory: str | Path) -> list[Path]:
        """DIR/leaderboard.json (every head) and DIR/leaderboard.md, plus DIR/<head>/leaderboard.{json,md}."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "leaderboard.json").write_text(self.to_json())
        (directory / "leaderboard.md").write_text(self.to_markdown())
        paths = [directory / "leaderboard.json", directory / "leaderboard.md"]
        for head, board in self.boards.items():
            paths += board.save(directory / head)
        return paths


def build_leaderboards(
    result: WalkForwardResult, *, dm_loss: str = "absolute", info: dict[str, Any] | None = None
) -> Leaderboards:
    return Leaderboards({head: build_leaderboard(result, head, dm_loss=dm_loss, info=info) for head in result.heads})


@dataclass(frozen=True)
class PromotionDecision:
    """`publish`: the head is served. `passed`: it beat its reference honestly (False when forced)."""

    publish: bool
    reason: str
    forced: bool = False
    passed: bool = False


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
        return PromotionDecision(
            publish=True, reason=f"forced publication; the gate said: {reason}", forced=True, passed=False
        )
    return PromotionDecision(publish=verdict, reason=reason, passed=verdict)


def head_decisions(
    boards: Leaderboards, model: str, max_p_value: float = 0.05, *, force: bool = False
) -> dict[str, PromotionDecision]:
    """The gate per head of one model: each head against its own reference on its own board."""
    return {
        head: promotion_decision(board, model, max_p_value, force=force)
        for head, board in boards.boards.items()
        if any(row.name == model for row in board.rows)
    }
