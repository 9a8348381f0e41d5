"""A global model: one graph trained on every learning symbol's rows before one calendar date, checked on
each symbol's rows after it, and published for each symbol whose gate passes.

- `train_global`: the panel's calendar split (`scoring.calendar.calendar_split`), the learners' train / val
  rows pooled (`datasets.pooled`, one scaler), one member fit and exported — ONE ONNX graph.
- `check_global`: the exported graph (through onnxruntime: what serving runs) on a symbol's held-out rows —
  the calendar test block no learner's rows reach into — beside the baselines fit on that symbol's own
  earlier rows, on the same points. No training: a symbol the model never saw is checked (zero-shot) in the
  time it takes to read its klines.
- `global_candidates`: what `publish_candidates` publishes for one symbol: the shared graph (its bytes, so
  its sha256, are the same in every symbol's version; serving opens one session for all of them), the
  pooled scaler, the symbol's verdicts, and `training.global` naming the learners and the cut —
  unless `keeps_current` says the version the symbol serves now serves more heads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cse_models.config import DataConfig
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.pooled import pooled_series
from cse_models.datasets.prepared import PreparedSeries
from cse_models.datasets.segments import build_segments, epoch_ms
from cse_models.errors import ConfigError, DataError
from cse_models.evaluation.panel import global_name, panel_interval, stable_reason
from cse_models.evaluation.report import Leaderboards, build_leaderboards, head_decisions
from cse_models.evaluation.walk_forward import baseline_forecasters, run_walk_forward
from cse_models.export.exported import ExportedModel
from cse_models.features.scaling import FittedScaler
from cse_models.features.split import SplitConfig
from cse_models.members import member_kind
from cse_models.publication.assemble import Candidates, select
from cse_models.publication.ensemble_choice import graph_forecasts
from cse_models.scoring.baselines import Forecaster, Forecasts
from cse_models.scoring.calendar import CalendarFold, calendar_split
from cse_models.scoring.folds import Fold, FoldData, WalkForwardConfig, segment_rows, walk_forward_folds
from cse_models.specs import ModelSpec
from cse_models.store import Manifest
from cse_models.training.config import TrainingConfig
from cse_models.training.summary import TrainedModel

HELD_OUT = WalkForwardConfig(n_folds=1)  # the held-out check: one block, the split's test block


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


@dataclass(frozen=True)
class GlobalModel:
    """A trained and exported global member, the pooled scaler folded into its graph, the calendar split
    it learned before, and the symbols it learned from."""

    spec: ModelSpec
    trained: TrainedModel
    exported: ExportedModel
    scaler: FittedScaler
    split: CalendarFold
    learners: tuple[str, ...]
    data_cfg: DataConfig
    skipped: Mapping[str, str]  # symbols not learned from → why

    @property
    def name(self) -> str:
        return global_name(self.spec)

    def to_json(self) -> str:
        """The record (the trained and exported models are referenced by their directory and graph path)."""
        return json.dumps(
            {
                "spec": self.spec.as_dict(),
                "trained": json.loads(self.trained.to_json()),
                "exported": json.loads(self.exported.to_json()),
                "scaler": json.loads(self.scaler.to_json()),
                "split": asdict(self.split),
                "learners": list(self.learners),
                "data": asdict(self.data_cfg),
                "skipped": dict(self.skipped),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, data_cfg: DataConfig | None = None) -> GlobalModel:
        """The record back, with the data configuration it was trained with; ConfigError when `data_cfg` is
        given and is another one."""
        data = json.loads(text)
        if data_cfg is None:
            data_cfg = DataConfig(**{**data["data"], "split": SplitConfig(**data["data"]["split"])})
        if data["data"] != asdict(data_cfg):
            raise ConfigError(
                f"the global model {data['spec']['name']!r} was trained with data settings {data['data']}, "
                f"not {asdict(data_cfg)}: materialize it again"
            )
        spec = data["spec"]
        return cls(
            spec=ModelSpec(spec.pop("name"), spec.pop("architecture"), spec.pop("preset"), spec),
            trained=TrainedModel.from_json(json.dumps(data["trained"])),
            exported=ExportedModel.from_json(json.dumps(data["exported"])),
            scaler=FittedScaler.from_json(json.dumps(data["scaler"])),
            split=CalendarFold(
                **{**data["split"], "bounds": {k: tuple(v) for k, v in data["split"]["bounds"].items()}}
            ),
            learners=tuple(data["learners"]),
            data_cfg=data_cfg,
            skipped=data["skipped"],
        )

    def facts(self, symbol: str) -> dict[str, Any]:
        """The manifest's `training.global` for `symbol` (which global model was chosen is `metrics.selected`)."""
        return {
            "trained_on": list(self.learners),
            "learned_before": _iso(self.split.learn_stop_ms),
            "held_out_from": _iso(self.split.test_start_ms),
            "zero_shot": symbol not in self.learners,
        }


def symbol_rows(split: CalendarFold, features: pl.DataFrame, data_cfg: DataConfig) -> Fold | None:
    """The rows a symbol is checked on: its rows in the split's train, val and test — or, for a symbol
    listed after the cut (too few rows before it), its own rows after the cut cut like one series
    (`walk_forward_folds`, one fold: the baselines learn from the first ones, the graph is scored on the
    last ones; the global model learned from none of them). None when neither holds enough rows."""
    times = epoch_ms(features.get_column("open_time"))
    need = segment_rows(data_cfg, HELD_OUT)
    fold = split.rows(times, need)
    if fold is not None:
        return fold
    first = int(np.searchsorted(times, split.learn_stop_ms, side="left"))
    try:
        (after,) = walk_forward_folds(times.size - first, data_cfg, HELD_OUT)
    except DataError:
        return None
    rows = {name: slice(part.start + first, part.stop + first) for name, part in after.segments().items()}
    return Fold(0, rows["train"], rows["val"], rows["test"])


def train_global(
    spec: ModelSpec,
    features: Mapping[str, pl.DataFrame],
    data_cfg: DataConfig,
    train_cfg: TrainingConfig,
    directory: str | Path,
    *,
    weighting: str = "rows",
    resume: bool = False,
    devices: int | None = None,
) -> GlobalModel:
    """Fit `spec` on the pooled train / val rows of every symbol that has them before the split's test
    block (stablecoin-like series excluded), export it with the pooled scaler, parity-checked. `resume` and
    `devices` as for any member (`MemberKind.train`: continue a crashed run; data-parallel over N devices)."""
    directory = Path(directory)
    times = {symbol: epoch_ms(f.get_column("open_time")) for symbol, f in features.items()}
    split = calendar_split(times, panel_interval(features), data_cfg)
    need = segment_rows(data_cfg, HELD_OUT)
    skipped = {s: reason for s, f in features.items() if (reason := stable_reason(f))}
    learners = {}
    for symbol in features:
        if symbol not in skipped and split.rows(times[symbol], need, ("train", "val")) is not None:
            rows = split.slices(times[symbol], need)
            learners[symbol] = {"train": rows["train"], "val": rows["val"]}
        elif symbol not in skipped:
            skipped[symbol] = f"fewer than {need} candles in its train or val rows before {_iso(split.test_start_ms)}"
    data = pooled_series({s: features[s] for s in learners}, learners, data_cfg, weighting)
    kind = member_kind(spec.architecture)
    trained = kind.train(spec, data, train_cfg, directory / "model", resume=resume, devices=devices)
    parity = graph_inputs(data.val, data_cfg, limit=64)
    exported = kind.export(
        trained, data.scaler, data_cfg, directory / "model.onnx", parity, model_name=global_name(spec)
    )
    return GlobalModel(spec, trained, exported, data.scaler, split, tuple(learners), data_cfg, skipped)


def not_checkable(model: GlobalModel, symbol: str, features: pl.DataFrame) -> str:
    """Why `symbol` has no rows to check the model on (`symbol_rows` found none)."""
    times = features.get_column("open_time")
    return (
        f"{symbol}: its klines ({times.min()} → {times.max()}) hold neither ≥ "
        f"{segment_rows(model.data_cfg, HELD_OUT)} candles on both sides of the global model's cut "
        f"({_iso(model.split.test_start_ms)}) nor enough after it for one fold of their own: it cannot be "
        "checked on rows the model never learned from"
    )


def check_global(
    models: Sequence[GlobalModel], symbol: str, features: pl.DataFrame, info: dict[str, Any] | None = None
) -> Leaderboards:
    """The exported graphs (global models trained on one panel, so on one split) on `symbol`'s held-out
    rows beside the task's baselines (fit on its earlier rows), on the same points → Leaderboards. Raises
    DataError when the symbol has too few rows on either side of the cut."""
    first = models[0]
    if any(m.split != first.split or m.data_cfg != first.data_cfg for m in models):
        raise ConfigError("the global models were trained on different panels: materialize them together")
    fold = symbol_rows(first.split, features, first.data_cfg)
    if fold is None:
        raise DataError(not_checkable(first, symbol, features))
    paths = {model.name: model.exported.path for model in models}
    forecasters = baseline_forecasters(first.data_cfg.task)
    for name in paths:
        forecasters[name] = _graph_forecaster(name, paths[name], first.data_cfg)
    result = run_walk_forward(features, first.data_cfg, HELD_OUT, forecasters, folds=[fold])
    board_info = {"symbol": symbol, "zero_shot": symbol not in first.learners, "check": "held out", **(info or {})}
    return build_leaderboards(result, info=board_info)


def _graph_forecaster(name: str, path: str, data_cfg: DataConfig) -> Forecaster:
    def forecast(data: FoldData) -> Forecasts:
        return graph_forecasts({name: path}, data.test, data_cfg)[name]

    return forecast


def global_candidates(
    models: Sequence[GlobalModel],
    symbol: str,
    interval: str,
    features: pl.DataFrame,
    boards: Leaderboards,
    train_cfg: TrainingConfig,
    *,
    max_p_value: float = 0.05,
    force: bool = False,
) -> Candidates:
    """The global graphs as `symbol`'s candidates, judged by their held-out check (`check_global`);
    `publish_candidates` picks the one with the most heads through the gate."""
    first = models[0]
    fold = symbol_rows(first.split, features, first.data_cfg)
    if fold is None:
        raise DataError(f"{symbol}: no held-out rows to publish the global model on")
    segments = build_segments(features, first.scaler, first.data_cfg, fold.segments())
    specs = tuple(ModelSpec(m.name, m.spec.architecture, m.spec.preset, dict(m.spec.overrides)) for m in models)
    by_name = {m.name: m for m in models}
    return Candidates(
        symbol=symbol,
        interval=interval,
        prepared=PreparedSeries(segments, first.data_cfg, first.scaler),
        specs=specs,
        trained={name: m.trained for name, m in by_name.items()},
        exported={name: m.exported for name, m in by_name.items()},
        boards=boards,
        decisions={name: head_decisions(boards, name, max_p_value, force=force) for name in by_name},
        budget=asdict(train_cfg),
        scope=first.facts(symbol) | {"candidates": list(by_name)},
    )


def keeps_current(candidates: Candidates, current: Manifest | None) -> str | None:
    """Why the symbol keeps the version it serves now instead of the global graph — the global graph would
    serve fewer heads — or None. A symbol's own model that serves every head is not replaced by a global one
    that serves two: the user would lose forecasts (raises PublicationError when no global head passes)."""
    if current is None:
        return None
    chosen = select(candidates).name
    served = [head for head, decision in candidates.decisions[chosen].items() if decision.publish]
    now = [head.name for head in current.heads if head.publish]
    if len(served) >= len(now):
        return None
    return (
        f"{chosen} would serve {len(served)} head(s) ({', '.join(served) or 'none'}) where version "
        f"{current.version} serves {len(now)} ({', '.join(now)}): it keeps that version"
    )
