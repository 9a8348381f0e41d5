"""`global_evaluation`'s value for one symbol: the global models' held-out leaderboards, or why there are none.

A symbol is "not checkable" when no global model has been trained yet, or when its klines neither reach
both sides of the global models' calendar cut nor hold one fold of their own after it (a coin listed after
the cut is checked on those: `global_model.symbol_rows`) — the bundled BTCUSDT ends in 2021-06, before the
cut of a panel that runs to 2021-12: it keeps its own model, and `published_global` publishes nothing for it.
That is an outcome, not a failure, so the record says it instead of the run failing.

`graphs` names the exact bytes that were checked (graph sha256 per global model): `published_global`
refuses to publish a graph that is not the one checked (a global model retrained in between).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from cse_models.config import DataConfig
from cse_models.errors import ConfigError
from cse_models.evaluation.report import Leaderboards
from cse_models.publication.global_model import GlobalModel, check_global, not_checkable, symbol_rows
from cse_models.store import sha256_file

NO_GLOBAL_MODEL = "no global model has been materialized yet: run the `global_training` job"


@dataclass(frozen=True)
class GlobalCheck:
    """The held-out check of the global models on one symbol (`boards` None: not checkable, see `reason`)."""

    symbol: str
    boards: Leaderboards | None
    zero_shot: bool = False  # the global models never learned from this symbol
    reason: str = ""  # why there are no boards
    graphs: dict[str, str] = field(default_factory=dict)  # global model name → sha256 of the graph checked

    @property
    def checkable(self) -> bool:
        return self.boards is not None

    def to_json(self) -> str:
        return json.dumps(
            {
                "symbol": self.symbol,
                "boards": None if self.boards is None else json.loads(self.boards.to_json()),
                "zero_shot": self.zero_shot,
                "reason": self.reason,
                "graphs": self.graphs,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> GlobalCheck:
        data = json.loads(text)
        boards = None if data["boards"] is None else Leaderboards.from_dict(data["boards"])
        return cls(data["symbol"], boards, data["zero_shot"], data["reason"], data["graphs"])


def graph_hashes(models: Sequence[GlobalModel]) -> dict[str, str]:
    return {model.name: sha256_file(Path(model.exported.path)) for model in models}


def check_symbol(
    models: Sequence[GlobalModel], symbol: str, features: pl.DataFrame, data_cfg: DataConfig, info: dict[str, Any]
) -> GlobalCheck:
    """The global models on `symbol`'s rows after their cut (`check_global`: onnxruntime, no training), or
    why they cannot be checked there. ConfigError when they were trained with other data settings."""
    if not models:
        return GlobalCheck(symbol, None, reason=NO_GLOBAL_MODEL)
    first = models[0]
    if any(model.data_cfg != data_cfg for model in models):
        raise ConfigError(
            f"the global models were trained with other data settings than {data_cfg}: run `global_training` again"
        )
    zero_shot = symbol not in first.learners
    if symbol_rows(first.split, features, data_cfg) is None:
        return GlobalCheck(symbol, None, zero_shot, not_checkable(first, symbol, features))
    boards = check_global(models, symbol, features, info)
    return GlobalCheck(symbol, boards, zero_shot, graphs=graph_hashes(models))
