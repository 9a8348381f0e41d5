"""A walk-forward run on disk: every head's leaderboard, the promotion decision per model and head, and the
Markdown a person reads — what `cse-models evaluate` writes per symbol, single-series or panel."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from cse_models.evaluation.report import Leaderboards, head_decisions


def write_boards(boards: Leaderboards, models: Sequence[str], out: Path, max_p: float, head: str = "all") -> str:
    """`out/leaderboard.{json,md}`, `out/<head>/leaderboard.{json,md}` and `out/promotion.json`; returns the
    Markdown (the leaderboards and each model's promotion per head at DM p ≤ `max_p`)."""
    if head != "all":
        boards = Leaderboards({head: boards[head]})
    decisions = {name: head_decisions(boards, name, max_p) for name in models}
    promotion = "\n".join(
        f"- {name} / {h}: {'publish' if d.publish else 'withhold'} — {d.reason}"
        for name, heads in decisions.items()
        for h, d in heads.items()
    )
    markdown = f"{boards.to_markdown()}\n**Promotion per head** (DM p ≤ {max_p}):\n\n{promotion}\n"
    boards.save(out)
    (out / "leaderboard.md").write_text(markdown)
    promotion_json = {
        name: {h: dataclasses.asdict(d) | {"max_p_value": max_p} for h, d in heads.items()}
        for name, heads in decisions.items()
    }
    (out / "promotion.json").write_text(json.dumps(promotion_json, indent=2))
    return markdown
